using ILGPU;
using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>Four scores of one query row, against four consecutive keys.</summary>
public struct ScoreQuad
{
    /// <summary>Against key jj, jj + 1, jj + 2, jj + 3.</summary>
    public float S0, S1, S2, S3;
}

/// <summary>
/// How the fused attention kernel scores a query row against a key (its compile-time specialisation; the kernel's
/// staging, masking, online normalisation and P·V are shared). Both read rows of <c>width</c> floats staged in shared
/// memory; the positions advance as loop variables (see <see cref="AttentionKernels"/>).
/// </summary>
public interface IAttentionScore
{
    /// <summary>
    /// The scores of the query row at <paramref name="queryAt"/> against the four key rows at <paramref name="keyAt"/>,
    /// <paramref name="keyAt"/> + <paramref name="keyStride"/>, …; <paramref name="scoreVector"/> is the additive form's w.
    /// </summary>
    ScoreQuad Four(ArrayView<float> queries, ArrayView<float> keys, ArrayView<float> scoreVector, int queryAt, int keyAt,
        int keyStride, int width);
}

/// <summary>Scaled dot product: q·k (the queries are staged already scaled).</summary>
public struct DotProductScore : IAttentionScore
{
    /// <inheritdoc />
    public readonly ScoreQuad Four(ArrayView<float> queries, ArrayView<float> keys, ArrayView<float> scoreVector, int queryAt,
        int keyAt, int keyStride, int width)
    {
        var s = default(ScoreQuad);
        for (int c = 0; c < width; c++, queryAt++, keyAt++)
        {
            float x = queries[queryAt];
            s.S0 += x * keys[keyAt];
            s.S1 += x * keys[keyAt + keyStride];
            s.S2 += x * keys[keyAt + 2 * keyStride];
            s.S3 += x * keys[keyAt + 3 * keyStride];
        }
        return s;
    }
}

/// <summary>
/// Additive (Bahdanau) scoring over projected rows: Σₐ wₐ·tanh(q'ₐ + k'ₐ), with q' = q·W_q and k' = k·W_k made beforehand.
/// wₐ is read from global memory: every thread reads the same element at once (one broadcast through the cache).
/// </summary>
public struct AdditiveScore : IAttentionScore
{
    /// <inheritdoc />
    public readonly ScoreQuad Four(ArrayView<float> queries, ArrayView<float> keys, ArrayView<float> scoreVector, int queryAt,
        int keyAt, int keyStride, int width)
    {
        var s = default(ScoreQuad);
        for (int c = 0; c < width; c++, queryAt++, keyAt++)
        {
            float x = queries[queryAt], w = scoreVector[c];
            s.S0 += w * ActivationMath.Tanh(x + keys[keyAt]);
            s.S1 += w * ActivationMath.Tanh(x + keys[keyAt + keyStride]);
            s.S2 += w * ActivationMath.Tanh(x + keys[keyAt + 2 * keyStride]);
            s.S3 += w * ActivationMath.Tanh(x + keys[keyAt + 3 * keyStride]);
        }
        return s;
    }
}

/// <summary>
/// How masked scores become weights in the fused kernel: the weight of a score, and its share of the row's normaliser
/// (the output row is Σ weight·v divided by the sum of the shares). Specialised at compile time.
/// </summary>
public interface IScoreWeights
{
    /// <summary>True when the weights depend on the row's running max (the kernel then folds the max per tile).</summary>
    bool TracksMax { get; }

    /// <summary>The weight of a masked score (−∞ when hidden) given the row's max so far.</summary>
    float Weight(float score, float rowMax);

    /// <summary>What the score adds to the row's normaliser.</summary>
    float Share(float score, float weight);
}

/// <summary>softmax: weight e^(s − max), normalised by Σ e^(s − max) (the online softmax).</summary>
public struct SoftmaxWeights : IScoreWeights
{
    /// <inheritdoc />
    public readonly bool TracksMax => true;

    /// <inheritdoc />
    public readonly float Weight(float score, float rowMax) => score == float.NegativeInfinity ? 0f : XMath.Exp(score - rowMax);

    /// <inheritdoc />
    public readonly float Share(float score, float weight) => weight;
}

/// <summary>The ReLU normaliser: weight ReLU(s) (NaN kept), normalised by the number of visible keys.</summary>
public struct ReluWeights : IScoreWeights
{
    /// <inheritdoc />
    public readonly bool TracksMax => false;

    /// <inheritdoc />
    public readonly float Weight(float score, float rowMax) => ActivationMath.Relu(score);

    /// <inheritdoc />
    public readonly float Share(float score, float weight) => score == float.NegativeInfinity ? 0f : 1f;
}
