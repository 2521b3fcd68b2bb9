using GpuAttention.Kernels;
using GpuAttention.Kernels.Cpu;
using GpuAttention.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAttention.Ops;

/// <summary>Scaled dot-product attention O = softmax(scale·Q·Kᵀ + mask)·V over [batch, heads, L, headDim] operands.</summary>
public static class Attention
{
    /// <summary>Largest head dimension the fused kernel accepts.</summary>
    public const int MaxHeadDim = 256;

    /// <summary>
    /// The fused, flash-attention-style kernel: no Lq×Lk buffer is allocated. <paramref name="q"/> is
    /// [batch, heads, Lq, d], <paramref name="k"/> and <paramref name="v"/> [batch, heads, Lk, d],
    /// <paramref name="output"/> [batch, heads, Lq, d]. <paramref name="scale"/> defaults to 1/√d.
    /// <paramref name="logSumExp"/> ([batch, heads, Lq]), when given, receives log Σⱼ exp(score) per query row
    /// (−∞ for a fully masked row, whose output is zeros). <paramref name="keyLength"/>, when given, attends to
    /// the first keyLength rows of k and v only: a key/value cache allocated for its longest sequence.
    /// </summary>
    public static void Fused(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor output,
        AttentionMask? mask = null, float? scale = null, DeviceTensor? logSumExp = null, int? keyLength = null)
    {
        var (batch, heads, lq, capacity, d) = Validate(q, k, v, output, ref scale);
        int lk = keyLength ?? capacity;
        if (lk < 1 || lk > capacity)
            throw new ArgumentOutOfRangeException(nameof(keyLength), keyLength,
                $"Argument 'keyLength' must be in 1..{capacity} (the rows of 'k' {DeviceTensor.ShapeText(k.Shape)}).");
        if (d > MaxHeadDim)
            throw new ArgumentException($"Argument 'q' has head dimension {d}; the fused kernel supports 1..{MaxHeadDim}.", nameof(q));
        if (logSumExp is not null)
        {
            Check.Usable(logSumExp, nameof(logSumExp), q.Device);
            Check.Shape(logSumExp, nameof(logSumExp), [batch, heads, lq], "(batch, heads, Lq)");
        }
        var device = q.Device;
        using var resolved = (mask ?? AttentionMask.None).Resolve(device, batch, heads, lq, lk, nameof(mask));
        output.MarkWritten();
        logSumExp?.MarkWritten();
        var p = new AttentionParams
        {
            Heads = heads, Lq = lq, Lk = lk, KeyCapacity = capacity, HeadDim = d, Scale = scale!.Value,
            WriteLogSumExp = logSumExp is null ? 0 : 1,
        };
        if (device.IsManaged)
        {
            unsafe
            {
                CpuAttention.FlashForward(q.Pointer, k.Pointer, v.Pointer, output.Pointer, logSumExp is null ? null : logSumExp.Pointer,
                    resolved.Host, p, batch);
            }
            return;
        }
        var profile = device.Profile!;
        var tiling = AttentionTiling.Choose(d, profile)
            ?? throw new ArgumentException(
                $"Argument 'q' has head dimension {d}, for which no tiling fits the launch profile's {profile.SharedMemoryBytes} bytes of shared memory.",
                nameof(q));
        p.RowTile = tiling.RowTile;
        p.KeyTile = tiling.KeyTile;
        var config = new KernelConfig(
            new Index2D((lq + tiling.RowTile - 1) / tiling.RowTile, batch * heads),
            new Index2D(profile.AttentionGroupSize, 1),
            SharedMemoryConfig.RequestDynamic<float>(tiling.SharedFloats));
        device.Kernels.FlashAttention(config, q.View, k.View, v.View, output.View, logSumExp?.View ?? default,
            resolved.Parameters, p);
    }

    /// <summary>
    /// The unfused baseline with the same contract as <see cref="Fused"/>: S = Q·Kᵀ into an Lq×Lk scratch
    /// buffer per (batch, head), the fused masked softmax over S (or the ReLU normaliser), then S·V.
    /// </summary>
    public static void Unfused(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor output,
        AttentionMask? mask = null, float? scale = null, ScoreNormalizer normalizer = ScoreNormalizer.Softmax)
    {
        var (batch, heads, lq, lk, d) = Validate(q, k, v, output, ref scale);
        if (!Enum.IsDefined(normalizer))
            throw new ArgumentOutOfRangeException(nameof(normalizer), normalizer, "Unknown score normaliser.");
        var device = q.Device;
        using var resolved = (mask ?? AttentionMask.None).Resolve(device, batch, heads, lq, lk, nameof(mask));
        using var scores = device.Allocate(batch * heads, lq, lk);
        int pairs = batch * heads;
        output.MarkWritten();

        var scoreProduct = new MatMulParams
        {
            M = lq, N = lk, K = d, Lda = d, Ldb = d, Ldc = lk,
            BatchStrideA = (long)lq * d, BatchStrideB = (long)lk * d, BatchStrideC = (long)lq * lk,
            TransB = 1, Alpha = 1f,
        };
        var valueProduct = new MatMulParams
        {
            M = lq, N = d, K = lk, Lda = lk, Ldb = d, Ldc = d,
            BatchStrideA = (long)lq * lk, BatchStrideB = (long)lk * d, BatchStrideC = (long)lq * d,
            Alpha = 1f,
        };
        if (device.IsManaged)
        {
            unsafe
            {
                CpuMatMul.Multiply(q.Pointer, k.Pointer, scores.Pointer, null, scoreProduct, pairs);
                CpuSoftmax.MaskedSoftmax(scores.Pointer, scores.Pointer, resolved.Host,
                    new SoftmaxParams { Heads = heads, Lq = lq, Lk = lk, Scale = scale!.Value, Normalizer = (int)normalizer }, batch);
                CpuMatMul.Multiply(scores.Pointer, v.Pointer, output.Pointer, null, valueProduct, pairs);
            }
            return;
        }
        MatMul.Launch(device, q.View, k.View, scores.View, default, scoreProduct, pairs, MatMulAlgorithm.Auto);
        Softmax.Launch(device, scores.View, scores.View, resolved.Parameters, batch, heads, lq, lk, scale!.Value, normalizer);
        MatMul.Launch(device, scores.View, v.View, output.View, default, valueProduct, pairs, MatMulAlgorithm.Auto);
        device.Synchronize();
    }

    private static (int Batch, int Heads, int Lq, int Lk, int D) Validate(DeviceTensor q, DeviceTensor k, DeviceTensor v,
        DeviceTensor output, ref float? scale)
    {
        Check.Usable(q, nameof(q));
        Check.Usable(k, nameof(k), q.Device);
        Check.Usable(v, nameof(v), q.Device);
        Check.Usable(output, nameof(output), q.Device);
        const string operand = "([batch, heads, L, headDim])";
        Check.Rank(q, nameof(q), operand, 4);
        Check.Rank(k, nameof(k), operand, 4);
        int batch = q.Shape[0], heads = q.Shape[1], lq = q.Shape[2], d = q.Shape[3], lk = k.Shape[2];
        Check.Shape(k, nameof(k), [batch, heads, lk, d], "(batch, heads, Lk, headDim of 'q')");
        Check.Shape(v, nameof(v), [batch, heads, lk, d], "(batch, heads, Lk of 'k', headDim of 'q')");
        Check.Shape(output, nameof(output), [batch, heads, lq, d], "(batch, heads, Lq, headDim)");
        foreach (var (input, name) in new[] { (q, nameof(q)), (k, nameof(k)), (v, nameof(v)) })
            Check.Distinct(output, nameof(output), input, name);
        Check.GridLimit((long)batch * heads, nameof(q), "batch·heads");
        scale ??= 1f / MathF.Sqrt(d);
        Check.Finite(scale.Value, nameof(scale));
        return (batch, heads, lq, lk, d);
    }
}

/// <summary>
/// Tile sizes of the fused attention kernel for one head dimension and launch profile: the most query rows per
/// group (≤ 64) whose output slice fits each thread's <see cref="AttentionKernels.MaxAccumulators"/> registers,
/// then the profile's key tile, both halved until the shared memory fits the profile's budget.
/// </summary>
internal sealed record AttentionTiling(int RowTile, int KeyTile, int SharedFloats)
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
        while (AttentionKernels.SharedFloats(rowTile, keyTile, headDim) > budget && (keyTile > 8 || rowTile > 1))
        {
            if (keyTile > 8)
                keyTile /= 2;
            else
                rowTile /= 2;
        }
        int shared = AttentionKernels.SharedFloats(rowTile, keyTile, headDim);
        return shared <= budget ? new AttentionTiling(rowTile, keyTile, shared) : null;
    }

    private static int PerThreadColumns(int headDim, int threadsPerRow) => (headDim + threadsPerRow - 1) / threadsPerRow;
}
