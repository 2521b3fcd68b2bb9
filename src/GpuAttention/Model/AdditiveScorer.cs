using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>
/// The additive score of a multi-head attention, score(q, k) = wᵀ·tanh(W_qᵀ·q + W_kᵀ·k), applied to every head's
/// projected queries and keys (the heads share it): W_q and W_k [d_k, d_a], w [d_a].
/// </summary>
public sealed class AdditiveScorer(DeviceTensor queryWeight, DeviceTensor keyWeight, DeviceTensor scoreVector) : IDisposable
{
    /// <summary>Loads <c>{prefix}score.query_weight</c> and <c>score.key_weight</c> [d_k, d_a] and <c>score.vector</c> [d_a].</summary>
    public static AdditiveScorer Load(WeightSource weights, string prefix, int headDim, int width) =>
        new(weights.Load(prefix + "score.query_weight", headDim, width), weights.Load(prefix + "score.key_weight", headDim, width),
            weights.Load(prefix + "score.vector", width));

    /// <summary>W_q [d_k, d_a].</summary>
    public DeviceTensor QueryWeight { get; } = queryWeight;

    /// <summary>W_k [d_k, d_a].</summary>
    public DeviceTensor KeyWeight { get; } = keyWeight;

    /// <summary>w [d_a].</summary>
    public DeviceTensor ScoreVector { get; } = scoreVector;

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        QueryWeight.Dispose();
        KeyWeight.Dispose();
        ScoreVector.Dispose();
    }
}
