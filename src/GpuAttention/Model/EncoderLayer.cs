using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>Self-attention → Add &amp; Norm → feed-forward → Add &amp; Norm (PyTorch's TransformerEncoderLayer).</summary>
public sealed class EncoderLayer(MultiHeadAttention selfAttention, PositionwiseFeedForward feedForward,
    SublayerConnection attentionSublayer, SublayerConnection feedForwardSublayer) : IDisposable
{
    /// <summary>Loads <c>{prefix}self_attn.*</c>, <c>linear1/2</c> and <c>norm1/2</c>.</summary>
    public static EncoderLayer Load(WeightSource weights, string prefix, TransformerConfig config) =>
        new(MultiHeadAttention.LoadSelfAttention(weights, prefix + "self_attn.", config),
            PositionwiseFeedForward.Load(weights, prefix, config),
            SublayerConnection.Load(weights, prefix + "norm1", config),
            SublayerConnection.Load(weights, prefix + "norm2", config));

    /// <summary>x [batch, S, d_model] → a new [batch, S, d_model]; <paramref name="mask"/> hides the source's padding.</summary>
    public DeviceTensor Forward(DeviceTensor x, AttentionMask mask)
    {
        using var attended = attentionSublayer.Forward(x, h => selfAttention.Forward(h, h, mask));
        return feedForwardSublayer.Forward(attended, feedForward.Forward);
    }

    /// <summary>The layer over packed sequences x [1, total, d_model] (<see cref="PackedSequences"/>) → a new [1, total, d_model].</summary>
    public DeviceTensor ForwardPacked(DeviceTensor x, PackedSequences packing)
    {
        using var attended = attentionSublayer.Forward(x, h => selfAttention.ForwardPacked(h, packing));
        return feedForwardSublayer.Forward(attended, feedForward.Forward);
    }

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        selfAttention.Dispose();
        feedForward.Dispose();
        attentionSublayer.Dispose();
        feedForwardSublayer.Dispose();
    }
}
