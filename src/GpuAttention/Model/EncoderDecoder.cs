using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>
/// One residual sublayer: post-LN (the paper) computes LayerNorm(x + f(x)); pre-LN computes x + f(LayerNorm(x)).
/// </summary>
internal static class Residual
{
    public static DeviceTensor Apply(DeviceTensor x, LayerNormalization norm, bool normFirst, Func<DeviceTensor, DeviceTensor> sublayer)
    {
        if (!normFirst)
        {
            using var fx = sublayer(x);
            return norm.Forward(x, fx);
        }
        using var normalized = norm.Forward(x);
        var y = sublayer(normalized);
        Elementwise.Add(x, y, y);
        return y;
    }
}

/// <summary>Self-attention → Add &amp; Norm → feed-forward → Add &amp; Norm (PyTorch's TransformerEncoderLayer).</summary>
public sealed class EncoderLayer : IDisposable
{
    private readonly MultiHeadAttention selfAttention;
    private readonly PositionwiseFeedForward feedForward;
    private readonly LayerNormalization norm1, norm2;
    private readonly bool normFirst;

    public EncoderLayer(WeightSource weights, string prefix, TransformerConfig config)
    {
        selfAttention = new MultiHeadAttention(weights, prefix + "self_attn.", config);
        feedForward = PositionwiseFeedForward.Load(weights, prefix, config);
        norm1 = LayerNormalization.Load(weights, prefix + "norm1", config.DModel, config.LayerNormEpsilon);
        norm2 = LayerNormalization.Load(weights, prefix + "norm2", config.DModel, config.LayerNormEpsilon);
        normFirst = config.NormFirst;
    }

    public DeviceTensor Forward(DeviceTensor x, AttentionMask sourceMask)
    {
        using var attended = Residual.Apply(x, norm1, normFirst, h => selfAttention.Forward(h, h, sourceMask));
        return Residual.Apply(attended, norm2, normFirst, feedForward.Forward);
    }

    public void Dispose()
    {
        selfAttention.Dispose();
        feedForward.Dispose();
        norm1.Dispose();
        norm2.Dispose();
    }
}

/// <summary>
/// Masked self-attention → Add &amp; Norm → cross-attention over the encoder memory → Add &amp; Norm →
/// feed-forward → Add &amp; Norm (PyTorch's TransformerDecoderLayer).
/// </summary>
public sealed class DecoderLayer : IDisposable
{
    private readonly MultiHeadAttention selfAttention, crossAttention;
    private readonly PositionwiseFeedForward feedForward;
    private readonly LayerNormalization norm1, norm2, norm3;
    private readonly bool normFirst;

    public DecoderLayer(WeightSource weights, string prefix, TransformerConfig config)
    {
        selfAttention = new MultiHeadAttention(weights, prefix + "self_attn.", config);
        crossAttention = new MultiHeadAttention(weights, prefix + "multihead_attn.", config);
        feedForward = PositionwiseFeedForward.Load(weights, prefix, config);
        norm1 = LayerNormalization.Load(weights, prefix + "norm1", config.DModel, config.LayerNormEpsilon);
        norm2 = LayerNormalization.Load(weights, prefix + "norm2", config.DModel, config.LayerNormEpsilon);
        norm3 = LayerNormalization.Load(weights, prefix + "norm3", config.DModel, config.LayerNormEpsilon);
        normFirst = config.NormFirst;
    }

    /// <summary>The whole target sequence at once (teacher forcing, or decoding without a cache).</summary>
    public DeviceTensor Forward(DeviceTensor x, DeviceTensor memory, AttentionMask memoryMask)
    {
        using var self = Residual.Apply(x, norm1, normFirst, h => selfAttention.Forward(h, h, AttentionMask.Causal));
        using var cross = Residual.Apply(self, norm2, normFirst, h => crossAttention.Forward(h, memory, memoryMask));
        return Residual.Apply(cross, norm3, normFirst, feedForward.Forward);
    }

    /// <summary>One decoding step at <paramref name="position"/> using (and extending) the layer's cache.</summary>
    public DeviceTensor ForwardStep(DeviceTensor x, LayerCache cache, int position, AttentionMask memoryMask)
    {
        using var self = Residual.Apply(x, norm1, normFirst, h => selfAttention.ForwardCached(h, cache, position));
        using var cross = Residual.Apply(self, norm2, normFirst,
            h => crossAttention.Attend(h, cache.MemoryKeys, cache.MemoryValues, cache.MemoryKeys.Shape[2], memoryMask));
        return Residual.Apply(cross, norm3, normFirst, feedForward.Forward);
    }

    /// <summary>A cache for decoding up to <paramref name="capacity"/> tokens per sequence over <paramref name="memory"/> [batch, S, d_model].</summary>
    public LayerCache CreateCache(DeviceTensor memory, int capacity, TransformerConfig config)
    {
        var device = memory.Device;
        int batch = memory.Shape[0];
        var (memoryKeys, memoryValues) = crossAttention.ProjectKeysAndValues(memory);
        return new LayerCache(
            device.Allocate(batch, config.Heads, capacity, config.HeadDim),
            device.Allocate(batch, config.Heads, capacity, config.HeadDim),
            memoryKeys, memoryValues);
    }

    public void Dispose()
    {
        selfAttention.Dispose();
        crossAttention.Dispose();
        feedForward.Dispose();
        norm1.Dispose();
        norm2.Dispose();
        norm3.Dispose();
    }
}

/// <summary>
/// One decoder layer's key/value cache: its self-attention keys and values so far ([batch, heads, capacity, d_k],
/// filled up to the current position) and the cross-attention keys and values of the encoder memory, computed once.
/// </summary>
public sealed class LayerCache(DeviceTensor keys, DeviceTensor values, DeviceTensor memoryKeys, DeviceTensor memoryValues) : IDisposable
{
    public DeviceTensor Keys { get; private set; } = keys;
    public DeviceTensor Values { get; private set; } = values;
    public DeviceTensor MemoryKeys { get; } = memoryKeys;
    public DeviceTensor MemoryValues { get; } = memoryValues;

    /// <summary>Reorders the batch entries of the self-attention cache: entry i becomes old entry sources[i] (beam search).</summary>
    public void Reorder(ReadOnlySpan<int> sources)
    {
        Keys = Gathered(Keys, sources);
        Values = Gathered(Values, sources);
    }

    private static DeviceTensor Gathered(DeviceTensor x, ReadOnlySpan<int> sources)
    {
        var y = x.Device.Allocate([.. x.Shape]);
        HeadLayout.GatherBatch(x, sources, y);
        x.Dispose();
        return y;
    }

    public void Dispose()
    {
        Keys.Dispose();
        Values.Dispose();
        MemoryKeys.Dispose();
        MemoryValues.Dispose();
    }
}
