using System.Numerics;
using GpuAttention.Kernels;
using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAttention.Backends.Ilgpu;

internal sealed partial class IlgpuBackend
{
    /// <summary>
    /// <see cref="AttentionKernels.FlashForward"/> (dot-product scores) over grid (⌈Lq / RowTile⌉, batch·heads) with the
    /// tiling <see cref="AttentionTiling.Choose(int, int, LaunchProfile)"/> picks for the widths and the launch profile.
    /// </summary>
    public override void Attention(AttentionProblem p, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor output,
        DeviceTensor? logSumExp, ResolvedMask mask) =>
        LaunchFlashForward(p, additive: false, q, k, v, default, output, logSumExp, mask);

    /// <summary>
    /// 16-bit attention on the tensor cores (<see cref="TensorCoreAttentionKernels.FlashForward"/>) when the launch profile
    /// gives it warps (<see cref="LaunchProfile.TensorCoreWarps"/>), the head dimension is a compiled one
    /// (<see cref="TensorCoreHeadDims"/>) and the normaliser is the softmax; otherwise the base class widens to the fp32 kernel.
    /// </summary>
    public override void AttentionSixteenBit(AttentionProblem p, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor output,
        DeviceTensor? logSumExp, ResolvedMask mask)
    {
        if (!RunsOnTensorCores(p))
        {
            base.AttentionSixteenBit(p, q, k, v, output, logSumExp, mask);
            return;
        }
        int warps = profile.TensorCoreWarps;
        int blockRows = warps * TensorCoreAttentionKernels.RowsPerWarp;
        using var lengths = ValidLengths(mask);
        var config = new KernelConfig(
            new Index2D((p.Lq + blockRows - 1) / blockRows, p.BatchHeads),
            new Index2D(warps * MmaLayout.WarpSize, 1),
            SharedMemoryConfig.RequestDynamic<byte>(TensorCoreAttentionKernels.SharedBytes(p.HeadDim, warps, onCuda: Kind == DeviceKind.Cuda)));
        var kernel = Kernels.TensorCoreAttention(q.DType == DType.BF16, p.HeadDim, sixteenBitOutput: output.DType != DType.F32);
        kernel.Launch(config, View<ushort>(q), View<ushort>(k), View<ushort>(v), output.DType == DType.F32 ? Floats(output) : default,
            output.DType == DType.F32 ? default : View<ushort>(output), FloatsOrEmpty(logSumExp), View(mask, lengths), p);
    }

    /// <summary>Head dimensions the tensor-core attention is compiled for.</summary>
    public static readonly int[] TensorCoreHeadDims = [64, 128];

    /// <summary>True when <see cref="AttentionSixteenBit"/> runs <paramref name="p"/> on the tensor-core kernel.</summary>
    internal bool RunsOnTensorCores(AttentionProblem p) =>
        profile.TensorCoreWarps > 0 && TensorCoreHeadDims.Contains(p.HeadDim) && p.Normalizer == (int)ScoreNormalizer.Softmax;

    internal void LaunchFlashForward(AttentionProblem p, bool additive, DeviceTensor q, DeviceTensor k, DeviceTensor v,
        ArrayView<float> scoreVector, DeviceTensor output, DeviceTensor? logSumExp, ResolvedMask mask)
    {
        var tiling = AttentionTiling.Choose(p.HeadDim, p.ValueDim, profile)
            ?? throw new ArgumentException(
                $"Argument 'q' has rows of {p.HeadDim} (scored) and {p.ValueDim} (values), for which no tiling fits the launch profile's {profile.SharedMemoryBytes} bytes of shared memory.",
                nameof(q));
        using var lengths = ValidLengths(mask);
        var config = new KernelConfig(
            new Index2D((p.Lq + tiling.RowTile - 1) / tiling.RowTile, p.BatchHeads),
            new Index2D(profile.AttentionGroupSize, 1),
            SharedMemoryConfig.RequestDynamic<float>(tiling.SharedFloats));
        var kernel = Kernels.FlashAttention(tiling.Capacity, additive, relu: p.Normalizer == (int)ScoreNormalizer.Relu);
        kernel.Launch(config, Floats(q), Floats(k), Floats(v), Floats(output), FloatsOrEmpty(logSumExp), scoreVector,
            View(mask, lengths), p,
            new AttentionTiles
            {
                RowTile = tiling.RowTile,
                KeyTile = tiling.KeyTile,
                ThreadsPerRowLog2 = BitOperations.Log2((uint)(profile.AttentionGroupSize / tiling.RowTile)),
            });
    }
}

/// <summary>
/// Tile sizes of the fused attention kernel for the widths of its rows (scored Q/K rows, V/O rows) and a launch profile:
/// the most query rows per group (≤ 64) whose output slice fits each thread's <see cref="AttentionKernels.MaxAccumulators"/>
/// registers, then the profile's key tile (a multiple of <see cref="AttentionKernels.KeysPerThread"/>), both halved until
/// the shared memory fits the profile's budget. <see cref="Capacity"/> is the register accumulator's width (8, 16 or 32
/// columns) that holds a thread's slice.
/// </summary>
internal sealed record AttentionTiling(int RowTile, int KeyTile, int Capacity, int SharedFloats)
{
    /// <summary>The tiling for dot-product attention, whose scored and value rows are both <paramref name="headDim"/> wide.</summary>
    public static AttentionTiling? Choose(int headDim, LaunchProfile profile) => Choose(headDim, headDim, profile);

    public static AttentionTiling? Choose(int scoreWidth, int valueDim, LaunchProfile profile)
    {
        int threads = profile.AttentionGroupSize;
        int rowTile = Math.Min(64, threads);
        while (rowTile > 1 && PerThreadColumns(valueDim, threads / rowTile) > AttentionKernels.MaxAccumulators)
            rowTile /= 2;
        if (PerThreadColumns(valueDim, threads / rowTile) > AttentionKernels.MaxAccumulators)
            return null;
        int keyTile = profile.AttentionKeyTile;
        int budget = profile.SharedMemoryBytes / sizeof(float);
        int Shared() => AttentionKernels.SharedFloats(rowTile, keyTile, scoreWidth, threads, AccumulatorFor(PerThreadColumns(valueDim, threads / rowTile)));
        while (Shared() > budget && (keyTile > 8 || rowTile > 1))
        {
            if (keyTile > 8)
                keyTile /= 2;
            else
                rowTile /= 2;
        }
        int shared = Shared();
        return shared <= budget ? new AttentionTiling(rowTile, keyTile, AccumulatorFor(PerThreadColumns(valueDim, threads / rowTile)), shared) : null;
    }

    private static int PerThreadColumns(int width, int threadsPerRow) => (width + threadsPerRow - 1) / threadsPerRow;

    /// <summary>The narrowest compiled accumulator (8, 16 or 32 columns) holding <paramref name="columns"/>.</summary>
    private static int AccumulatorFor(int columns) => columns <= 8 ? 8 : columns <= 16 ? 16 : 32;
}
