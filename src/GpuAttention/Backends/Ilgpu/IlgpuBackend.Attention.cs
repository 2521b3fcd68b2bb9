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
    /// <see cref="AttentionKernels.FlashForward"/> over grid (⌈Lq / RowTile⌉, batch·heads) with the tiling
    /// <see cref="AttentionTiling.Choose"/> picks for the head dimension and the launch profile.
    /// </summary>
    public override void Attention(AttentionProblem p, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor output,
        DeviceTensor? logSumExp, ResolvedMask mask)
    {
        var tiling = AttentionTiling.Choose(p.HeadDim, profile)
            ?? throw new ArgumentException(
                $"Argument 'q' has head dimension {p.HeadDim}, for which no tiling fits the launch profile's {profile.SharedMemoryBytes} bytes of shared memory.",
                nameof(q));
        using var lengths = ValidLengths(mask);
        var config = new KernelConfig(
            new Index2D((p.Lq + tiling.RowTile - 1) / tiling.RowTile, p.BatchHeads),
            new Index2D(profile.AttentionGroupSize, 1),
            SharedMemoryConfig.RequestDynamic<float>(tiling.SharedFloats));
        Kernels.FlashAttention(tiling.Capacity)(config, Floats(q), Floats(k), Floats(v), Floats(output), FloatsOrEmpty(logSumExp), View(mask, lengths), p,
            new AttentionTiles
            {
                RowTile = tiling.RowTile,
                KeyTile = tiling.KeyTile,
                ThreadsPerRowLog2 = BitOperations.Log2((uint)(profile.AttentionGroupSize / tiling.RowTile)),
            });
    }
}

/// <summary>
/// Tile sizes of the fused attention kernel for one head dimension and launch profile: the most query rows per
/// group (≤ 64) whose output slice fits each thread's <see cref="AttentionKernels.MaxAccumulators"/> registers,
/// then the profile's key tile (a multiple of <see cref="AttentionKernels.KeysPerThread"/>), both halved until the shared
/// memory fits the profile's budget. <see cref="Capacity"/> is the register accumulator's width (8, 16 or 32 columns) that
/// holds a thread's slice.
/// </summary>
internal sealed record AttentionTiling(int RowTile, int KeyTile, int Capacity, int SharedFloats)
{
    public static AttentionTiling? Choose(int headDim, LaunchProfile profile)
    {
        int threads = profile.AttentionGroupSize;
        int rowTile = Math.Min(64, threads);
        while (rowTile > 1 && PerThreadColumns(headDim, threads / rowTile) > AttentionKernels.MaxAccumulators)
            rowTile /= 2;
        if (PerThreadColumns(headDim, threads / rowTile) > AttentionKernels.MaxAccumulators)
            return null;
        int keyTile = profile.AttentionKeyTile;
        int budget = profile.SharedMemoryBytes / sizeof(float);
        int Shared() => AttentionKernels.SharedFloats(rowTile, keyTile, headDim, threads, AccumulatorFor(PerThreadColumns(headDim, threads / rowTile)));
        while (Shared() > budget && (keyTile > 8 || rowTile > 1))
        {
            if (keyTile > 8)
                keyTile /= 2;
            else
                rowTile /= 2;
        }
        int shared = Shared();
        return shared <= budget ? new AttentionTiling(rowTile, keyTile, AccumulatorFor(PerThreadColumns(headDim, threads / rowTile)), shared) : null;
    }

    private static int PerThreadColumns(int headDim, int threadsPerRow) => (headDim + threadsPerRow - 1) / threadsPerRow;

    /// <summary>The narrowest compiled accumulator (8, 16 or 32 columns) holding <paramref name="columns"/>.</summary>
    private static int AccumulatorFor(int columns) => columns <= 8 ? 8 : columns <= 16 ? 16 : 32;
}
