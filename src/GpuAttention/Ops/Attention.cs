using GpuAttention.Backends;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Ops;

/// <summary>
/// Scaled dot-product attention O = softmax(scale·Q·Kᵀ + mask)·V over [batch, heads, L, headDim] operands (or the ReLU
/// normaliser in place of the softmax). Additive scoring is <see cref="AdditiveAttention"/>.
/// </summary>
public static class Attention
{
    /// <summary>Largest head dimension the fused kernel accepts.</summary>
    public const int MaxHeadDim = 256;

    /// <summary>
    /// The fused, flash-attention-style kernel: no Lq×Lk buffer is allocated. <paramref name="q"/> is
    /// [batch, heads, Lq, d], <paramref name="k"/> and <paramref name="v"/> [batch, keyHeads, Lk, d] with keyHeads a divisor
    /// of heads (fewer is grouped-query attention: query head h reads key/value head h / (heads / keyHeads)),
    /// <paramref name="output"/> [batch, heads, Lq, d]. Q, K and V are F32, BF16 or F16, all three alike; the output is F32
    /// or their dtype. 16-bit operands accumulate in fp32: on CUDA with head dimension 64 or 128 and the softmax, the
    /// tensor-core kernel; otherwise they are widened exactly to F32 for the fp32 kernel (README, "Half precision attention").
    /// <paramref name="scale"/> defaults to 1/√d.
    /// <paramref name="logSumExp"/> (F32 [batch, heads, Lq]), when given, receives log Σⱼ exp(score) per query row
    /// (−∞ for a fully masked row, whose output is zeros). <paramref name="keyLength"/>, when given, attends to
    /// the first keyLength rows of k and v only: a key/value cache allocated for its longest sequence.
    /// <paramref name="normalizer"/> <see cref="ScoreNormalizer.Relu"/> weighs each visible key by ReLU(score) divided by
    /// the number of visible keys instead of the softmax (no log-sum-exp then; a fully masked row is zeros).
    /// </summary>
    public static void Fused(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor output,
        AttentionMask? mask = null, float? scale = null, DeviceTensor? logSumExp = null, int? keyLength = null,
        ScoreNormalizer normalizer = ScoreNormalizer.Softmax)
    {
        var (batch, heads, keyHeads, lq, capacity, d) = Validate(q, k, v, output, ref scale, fused: true);
        CheckNormalizer(normalizer, logSumExp);
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
            if (logSumExp.DType != DType.F32)
                throw new ArgumentException($"Argument 'logSumExp' must be F32 (its rows are fp32 statistics), got {logSumExp.DType}.", nameof(logSumExp));
        }
        var device = q.Device;
        var resolved = (mask ?? AttentionMask.None).Resolve(device, batch, heads, lq, lk, nameof(mask));
        output.MarkWritten();
        logSumExp?.MarkWritten();
        var p = new AttentionProblem
        {
            Batch = batch, Heads = heads, KeyHeads = keyHeads, Lq = lq, Lk = lk, KeyCapacity = capacity, HeadDim = d, ValueDim = d,
            Scale = scale!.Value, WriteLogSumExp = logSumExp is null ? 0 : 1, Normalizer = (int)normalizer,
        };
        if (q.DType == DType.F32)
            device.Backend.Attention(p, q, k, v, output, logSumExp, resolved);
        else
            device.Backend.AttentionSixteenBit(p, q, k, v, output, logSumExp, resolved);
    }

    /// <summary>
    /// The unfused baseline with the same contract as <see cref="Fused"/>: S = Q·Kᵀ into an Lq×Lk scratch
    /// buffer per (batch, head), the fused masked softmax over S (or the ReLU normaliser), then S·V.
    /// </summary>
    public static void Unfused(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor output,
        AttentionMask? mask = null, float? scale = null, ScoreNormalizer normalizer = ScoreNormalizer.Softmax)
    {
        var (batch, heads, _, lq, lk, d) = Validate(q, k, v, output, ref scale, fused: false);
        CheckNormalizer(normalizer, logSumExp: null);
        if ((long)batch * heads * lq * lk > DeviceTensor.MaxLength)
            throw new ArgumentException(
                $"Arguments 'q' and 'k' make a score matrix of {(long)batch * heads * lq * lk} elements, more than the {DeviceTensor.MaxLength} a tensor holds; use Attention.Fused, which needs none.",
                nameof(k));
        var device = q.Device;
        var resolved = (mask ?? AttentionMask.None).Resolve(device, batch, heads, lq, lk, nameof(mask));
        using var scores = device.Allocate(batch * heads, lq, lk);
        int pairs = batch * heads;
        output.MarkWritten();
        var scoreProduct = new MatMulProblem
        {
            Batch = pairs, M = lq, N = lk, K = d, Lda = d, Ldb = d, Ldc = lk,
            BatchStrideA = (long)lq * d, BatchStrideB = (long)lk * d, BatchStrideC = (long)lq * lk,
            TransB = 1, Alpha = 1f,
        };
        var valueProduct = new MatMulProblem
        {
            Batch = pairs, M = lq, N = d, K = lk, Lda = lk, Ldb = d, Ldc = d,
            BatchStrideA = (long)lq * lk, BatchStrideB = (long)lk * d, BatchStrideC = (long)lq * d,
            Alpha = 1f,
        };
        device.Backend.MatMul(scoreProduct, q, k, scores, null, MatMulAlgorithm.Auto);
        device.Backend.Softmax(Softmax.Problem(batch, heads, lq, lk, scale!.Value, normalizer), scores, scores, resolved);
        device.Backend.MatMul(valueProduct, scores, v, output, null, MatMulAlgorithm.Auto);
        device.Synchronize();
    }

    /// <summary>A known normaliser; the log-sum-exp only beside the softmax.</summary>
    internal static void CheckNormalizer(ScoreNormalizer normalizer, DeviceTensor? logSumExp)
    {
        if (!Enum.IsDefined(normalizer))
            throw new ArgumentOutOfRangeException(nameof(normalizer), normalizer, "Unknown score normaliser.");
        if (normalizer != ScoreNormalizer.Softmax && logSumExp is not null)
            throw new ArgumentException(
                $"Argument 'logSumExp' is the softmax's log Σ exp(score); the {normalizer} normaliser has none, so pass null.",
                nameof(logSumExp));
    }

    private static (int Batch, int Heads, int KeyHeads, int Lq, int Lk, int D) Validate(DeviceTensor q, DeviceTensor k,
        DeviceTensor v, DeviceTensor output, ref float? scale, bool fused)
    {
        Check.Usable(q, nameof(q));
        Check.Usable(k, nameof(k), q.Device);
        Check.Usable(v, nameof(v), q.Device);
        Check.Usable(output, nameof(output), q.Device);
        const string operand = "([batch, heads, L, headDim])";
        Check.Rank(q, nameof(q), operand, 4);
        Check.Rank(k, nameof(k), operand, 4);
        int batch = q.Shape[0], heads = q.Shape[1], lq = q.Shape[2], d = q.Shape[3], keyHeads = k.Shape[1], lk = k.Shape[2];
        if (!fused || keyHeads < 1 || heads % keyHeads != 0)
            keyHeads = heads;
        string keyHeadsText = fused ? "a divisor of the heads of 'q'" : "heads of 'q'";
        Check.Shape(k, nameof(k), [batch, keyHeads, lk, d], $"(batch, {keyHeadsText}, Lk, headDim of 'q')");
        Check.Shape(v, nameof(v), [batch, keyHeads, lk, d], "(batch, heads of 'k', Lk of 'k', headDim of 'q')");
        Check.Shape(output, nameof(output), [batch, heads, lq, d], "(batch, heads, Lq, headDim)");
        foreach (var (input, name) in new[] { (q, nameof(q)), (k, nameof(k)), (v, nameof(v)) })
            Check.Distinct(output, nameof(output), input, name);
        Check.GridLimit((long)batch * heads, nameof(q), "batch·heads");
        if (fused)
            CheckDTypes(q, k, v, output);
        Check.Implemented(q.Device, OpFamily.Attention, "Attention", q, nameof(q));
        Check.Implemented(q.Device, OpFamily.Attention, "Attention", k, nameof(k));
        Check.Implemented(q.Device, OpFamily.Attention, "Attention", v, nameof(v));
        Check.Implemented(q.Device, OpFamily.Attention, "Attention", output, nameof(output));
        if (!fused)
        {
            foreach (var (tensor, name) in new[] { (q, nameof(q)), (k, nameof(k)), (v, nameof(v)), (output, nameof(output)) })
                Check.F32Only(tensor, name, "Attention.Unfused", alternative: "; Attention.Fused takes BF16 and F16");
        }
        scale ??= 1f / MathF.Sqrt(d);
        Check.Finite(scale.Value, nameof(scale));
        return (batch, heads, keyHeads, lq, lk, d);
    }

    /// <summary>Q, K and V in one dtype; the output in F32 or that dtype.</summary>
    private static void CheckDTypes(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor output)
    {
        foreach (var (tensor, name) in new[] { (k, nameof(k)), (v, nameof(v)) })
        {
            if (tensor.DType != q.DType)
                throw new ArgumentException($"Argument '{name}' is {tensor.DType}; it must have the dtype of 'q', {q.DType}.", name);
        }
        if (output.DType != DType.F32 && output.DType != q.DType)
            throw new ArgumentException($"Argument 'output' is {output.DType}; it must be F32 or the dtype of 'q', {q.DType}.", nameof(output));
    }
}
