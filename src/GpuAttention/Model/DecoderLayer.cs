using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>
/// Masked self-attention → Add &amp; Norm → cross-attention over the encoder memory → Add &amp; Norm →
/// feed-forward → Add &amp; Norm (PyTorch's TransformerDecoderLayer).
/// </summary>
public sealed class DecoderLayer(MultiHeadAttention selfAttention, MultiHeadAttention crossAttention, PositionwiseFeedForward feedForward,
    SublayerConnection selfSublayer, SublayerConnection crossSublayer, SublayerConnection feedForwardSublayer) : IDisposable
{
    /// <summary>Loads <c>{prefix}self_attn.*</c>, <c>multihead_attn.*</c>, <c>linear1/2</c> and <c>norm1/2/3</c>.</summary>
    public static DecoderLayer Load(WeightSource weights, string prefix, TransformerConfig config) =>
        new(MultiHeadAttention.LoadSelfAttention(weights, prefix + "self_attn.", config),
            MultiHeadAttention.Load(weights, prefix + "multihead_attn.", config),
            PositionwiseFeedForward.Load(weights, prefix, config),
            SublayerConnection.Load(weights, prefix + "norm1", config),
            SublayerConnection.Load(weights, prefix + "norm2", config),
            SublayerConnection.Load(weights, prefix + "norm3", config));

    /// <summary>
    /// The whole target sequence at once (teacher forcing, or decoding without a cache): x [batch, T, d_model] attends to
    /// itself under <paramref name="targetMask"/> and to <paramref name="memory"/> [batch, S, d_model] under
    /// <paramref name="memoryMask"/> → a new [batch, T, d_model].
    /// </summary>
    public DeviceTensor Forward(DeviceTensor x, DeviceTensor memory, AttentionMask targetMask, AttentionMask memoryMask)
    {
        using var self = selfSublayer.Forward(x, h => selfAttention.Forward(h, h, targetMask));
        using var cross = crossSublayer.Forward(self, h => crossAttention.Forward(h, memory, memoryMask));
        return feedForwardSublayer.Forward(cross, feedForward.Forward);
    }

    /// <summary>One decoding step at <paramref name="position"/> using (and extending) the layer's cache.</summary>
    public DeviceTensor ForwardStep(DeviceTensor x, LayerCache cache, int position, AttentionMask memoryMask)
    {
        using var self = selfSublayer.Forward(x, h => selfAttention.ForwardCached(h, cache, position));
        using var cross = crossSublayer.Forward(self,
            h => crossAttention.Attend(h, cache.MemoryKeys, cache.MemoryValues, cache.MemoryKeys.Shape[2], memoryMask));
        return feedForwardSublayer.Forward(cross, feedForward.Forward);
    }

    /// <summary>A cache for decoding up to <paramref name="capacity"/> tokens per sequence over <paramref name="memory"/> [batch, S, d_model].</summary>
    public LayerCache CreateCache(DeviceTensor memory, int capacity)
    {
        var (memoryKeys, memoryValues) = crossAttention.ProjectKeysAndValues(memory);
        return new LayerCache(selfAttention.AllocateKeysOrValues(memory.Device, memory.Shape[0], capacity),
            selfAttention.AllocateKeysOrValues(memory.Device, memory.Shape[0], capacity), memoryKeys, memoryValues);
    }

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        selfAttention.Dispose();
        crossAttention.Dispose();
        feedForward.Dispose();
        selfSublayer.Dispose();
        crossSublayer.Dispose();
        feedForwardSublayer.Dispose();
    }
}
