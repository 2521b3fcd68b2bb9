using GpuAttention.Backends;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Ops;

/// <summary>
/// Additive (Bahdanau) attention: score(q, k) = wᵀ·tanh(W_qᵀ·q + W_kᵀ·k), then the mask, the softmax (or the ReLU
/// normaliser) over the keys and the weighted sum of the values. Queries and keys may have different widths:
/// <c>q</c> [batch, heads, Lq, d_q] (or [batch, Lq, d_q]), <c>k</c> [.., Lk, d_k], <c>v</c> [.., Lk, d_v],
/// <c>queryProjection</c> W_q [d_q, d_a], <c>keyProjection</c> W_k [d_k, d_a], <c>scoreVector</c> w [d_a], and
/// <c>output</c> [.., Lq, d_v]. The projections are made once (q' = q·W_q, k' = k·W_k, with the matmul); the masks are
/// those of <see cref="Attention"/>; a fully masked row is zeros; no scale is applied to the scores.
/// </summary>
public static class AdditiveAttention
{
    /// <summary>Largest projected width d_a and value width d_v the fused kernel accepts.</summary>
    public const int MaxWidth = 256;

    /// <summary>
    /// The fused kernel: key tiles are streamed and scored Σₐ wₐ·tanh(q'ₐ + k'ₐ) in place, with an online softmax (or
    /// the ReLU normaliser's count) and P·V accumulated as they go — no Lq×Lk buffer. <paramref name="logSumExp"/>
    /// ([batch, heads, Lq], or [batch, Lq] for rank-3 operands), when given, receives log Σⱼ exp(score) per query row
    /// (softmax only). <paramref name="keyLength"/>, when given, attends to the first keyLength rows of k and v only: a
    /// key/value cache allocated for its longest sequence.
    /// </summary>
    public static void Fused(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor queryProjection,
        DeviceTensor keyProjection, DeviceTensor scoreVector, DeviceTensor output, AttentionMask? mask = null,
        ScoreNormalizer normalizer = ScoreNormalizer.Softmax, DeviceTensor? logSumExp = null, int? keyLength = null)
    {
        var p = Validate(q, k, v, queryProjection, keyProjection, scoreVector, output, normalizer, logSumExp);
        if (keyLength is int length)
        {
            if (length < 1 || length > p.KeyCapacity)
                throw new ArgumentOutOfRangeException(nameof(keyLength), keyLength,
                    $"Argument 'keyLength' must be in 1..{p.KeyCapacity} (the rows of 'k' {DeviceTensor.ShapeText(k.Shape)}).");
            p.Lk = length;
        }
        if (p.HeadDim > MaxWidth || p.ValueDim > MaxWidth)
            throw new ArgumentException(
                $"Arguments 'queryProjection' and 'v' give a projected width of {p.HeadDim} and a value width of {p.ValueDim}; the fused kernel supports 1..{MaxWidth} for each.",
                p.HeadDim > MaxWidth ? nameof(queryProjection) : nameof(v));
        if (logSumExp is not null)
        {
            Check.Usable(logSumExp, nameof(logSumExp), q.Device);
            int[] shape = q.Shape.Count == 4 ? [p.Batch, p.Heads, p.Lq] : [p.Batch, p.Lq];
            Check.Shape(logSumExp, nameof(logSumExp), shape, q.Shape.Count == 4 ? "(batch, heads, Lq)" : "(batch, Lq)");
            Check.Implemented(q.Device, OpFamily.Attention, "AdditiveAttention.Fused", logSumExp, nameof(logSumExp));
        }
        var device = q.Device;
        var resolved = (mask ?? AttentionMask.None).Resolve(device, p.Batch, p.Heads, p.Lq, p.Lk, nameof(mask));
        output.MarkWritten();
        logSumExp?.MarkWritten();
        p.WriteLogSumExp = logSumExp is null ? 0 : 1;
        using var projectedQ = device.Allocate(p.BatchHeads * p.Lq, p.HeadDim);
        using var projectedK = device.Allocate(p.BatchHeads * p.KeyCapacity, p.HeadDim);
        Project(device, q, queryProjection, projectedQ);
        Project(device, k, keyProjection, projectedK);
        device.Backend.AdditiveAttention(p, projectedQ, projectedK, v, scoreVector, output, logSumExp, resolved);
        device.Synchronize();
    }

    /// <summary>
    /// The unfused baseline with the same contract as <see cref="Fused"/>: the scores S [batch·heads·Lq, Lk] into a scratch
    /// buffer, the fused masked softmax (or ReLU normaliser) over S, then S·V.
    /// </summary>
    public static void Unfused(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor queryProjection,
        DeviceTensor keyProjection, DeviceTensor scoreVector, DeviceTensor output, AttentionMask? mask = null,
        ScoreNormalizer normalizer = ScoreNormalizer.Softmax)
    {
        var p = Validate(q, k, v, queryProjection, keyProjection, scoreVector, output, normalizer, logSumExp: null);
        long scoreCount = (long)p.BatchHeads * p.Lq * p.Lk;
        if (scoreCount > DeviceTensor.MaxLength)
            throw new ArgumentException(
                $"Arguments 'q' and 'k' make a score matrix of {scoreCount} elements, more than the {DeviceTensor.MaxLength} a tensor holds; use AdditiveAttention.Fused, which needs none.",
                nameof(k));
        var device = q.Device;
        var resolved = (mask ?? AttentionMask.None).Resolve(device, p.Batch, p.Heads, p.Lq, p.Lk, nameof(mask));
        output.MarkWritten();
        using var projectedQ = device.Allocate(p.BatchHeads * p.Lq, p.HeadDim);
        using var projectedK = device.Allocate(p.BatchHeads * p.Lk, p.HeadDim);
        using var scores = device.Allocate(p.BatchHeads, p.Lq, p.Lk);
        Project(device, q, queryProjection, projectedQ);
        Project(device, k, keyProjection, projectedK);
        device.Backend.AdditiveScores(p, projectedQ, projectedK, scoreVector, scores);
        device.Backend.Softmax(Softmax.Problem(p.Batch, p.Heads, p.Lq, p.Lk, 1f, normalizer), scores, scores, resolved);
        var valueProduct = new MatMulProblem
        {
            Batch = p.BatchHeads, M = p.Lq, N = p.ValueDim, K = p.Lk, Lda = p.Lk, Ldb = p.ValueDim, Ldc = p.ValueDim,
            BatchStrideA = (long)p.Lq * p.Lk, BatchStrideB = (long)p.Lk * p.ValueDim, BatchStrideC = (long)p.Lq * p.ValueDim,
            Alpha = 1f,
        };
        device.Backend.MatMul(valueProduct, scores, v, output, null, MatMulAlgorithm.Auto);
        device.Synchronize();
    }

    /// <summary>rows·W: every row of <paramref name="x"/> (its last axis) times the projection, as one product.</summary>
    private static void Project(ComputeDevice device, DeviceTensor x, DeviceTensor projection, DeviceTensor projected)
    {
        int rows = projected.Shape[0], inner = projection.Shape[0], width = projection.Shape[1];
        var product = new MatMulProblem
        {
            Batch = 1, M = rows, N = width, K = inner, Lda = inner, Ldb = width, Ldc = width,
            BatchStrideA = (long)rows * inner, BatchStrideB = (long)inner * width, BatchStrideC = (long)rows * width,
            Alpha = 1f,
        };
        device.Backend.MatMul(product, x, projection, projected, null, MatMulAlgorithm.Auto);
    }

    private static AttentionProblem Validate(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor queryProjection,
        DeviceTensor keyProjection, DeviceTensor scoreVector, DeviceTensor output, ScoreNormalizer normalizer, DeviceTensor? logSumExp)
    {
        Check.Usable(q, nameof(q));
        Check.Usable(k, nameof(k), q.Device);
        Check.Usable(v, nameof(v), q.Device);
        Check.Usable(queryProjection, nameof(queryProjection), q.Device);
        Check.Usable(keyProjection, nameof(keyProjection), q.Device);
        Check.Usable(scoreVector, nameof(scoreVector), q.Device);
        Check.Usable(output, nameof(output), q.Device);
        Attention.CheckNormalizer(normalizer, logSumExp);
        const string operand = "([batch, heads, L, width] or [batch, L, width])";
        Check.Rank(q, nameof(q), operand, 3, 4);
        bool withHeads = q.Shape.Count == 4;
        int batch = q.Shape[0], heads = withHeads ? q.Shape[1] : 1, lq = q.Shape[^2], dq = q.Shape[^1];
        Check.Rank(k, nameof(k), withHeads ? "([batch, heads, Lk, d_k], as 'q' has heads)" : "([batch, Lk, d_k], as 'q' has no heads)", q.Shape.Count);
        int lk = k.Shape[^2], dk = k.Shape[^1];
        Check.Shape(k, nameof(k), Leading(batch, heads, withHeads, lk, dk), "(batch and heads of 'q', Lk, d_k)");
        Check.Rank(v, nameof(v), "(the rank of 'q')", q.Shape.Count);
        int dv = v.Shape[^1];
        Check.Shape(v, nameof(v), Leading(batch, heads, withHeads, lk, dv), "(batch and heads of 'q', Lk of 'k', d_v)");
        Check.Rank(queryProjection, nameof(queryProjection), "([d_q, d_a])", 2);
        int da = queryProjection.Shape[1];
        Check.Shape(queryProjection, nameof(queryProjection), [dq, da], "(d_q of 'q', d_a)");
        Check.Shape(keyProjection, nameof(keyProjection), [dk, da], "(d_k of 'k', d_a of 'queryProjection')");
        Check.Shape(scoreVector, nameof(scoreVector), [da], "(d_a of 'queryProjection')");
        Check.Shape(output, nameof(output), Leading(batch, heads, withHeads, lq, dv), "(batch and heads of 'q', Lq, d_v of 'v')");
        foreach (var (input, name) in new[]
        {
            (q, nameof(q)), (k, nameof(k)), (v, nameof(v)), (queryProjection, nameof(queryProjection)),
            (keyProjection, nameof(keyProjection)), (scoreVector, nameof(scoreVector)),
        })
        {
            Check.Distinct(output, nameof(output), input, name);
            Check.F32Only(input, name, "AdditiveAttention", alternative: "; convert it with Elementwise.Convert");
        }
        Check.F32Only(output, nameof(output), "AdditiveAttention", alternative: "; convert it with Elementwise.Convert");
        Check.GridLimit((long)batch * heads, nameof(q), "batch·heads");
        foreach (var (rows, name) in new[] { ((long)batch * heads * lq, nameof(q)), ((long)batch * heads * lk, nameof(k)) })
        {
            if (rows * da > DeviceTensor.MaxLength)
                throw new ArgumentException(
                    $"Argument '{name}' projected to width {da} makes {rows * da} elements, more than the {DeviceTensor.MaxLength} a tensor holds.",
                    name);
        }
        return new AttentionProblem
        {
            Batch = batch, Heads = heads, KeyHeads = heads, Lq = lq, Lk = lk, KeyCapacity = lk, HeadDim = da, ValueDim = dv, Scale = 1f,
            Normalizer = (int)normalizer,
        };
    }

    private static int[] Leading(int batch, int heads, bool withHeads, int length, int width) =>
        withHeads ? [batch, heads, length, width] : [batch, length, width];
}
