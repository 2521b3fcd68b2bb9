using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>The decoder stack: N decoder layers, then (nn.Transformer's) final layer norm.</summary>
public sealed class Decoder(IReadOnlyList<DecoderLayer> layers, LayerNormalization? norm) : IDisposable
{
    /// <summary>Loads <c>{prefix}layers.0.</c> … and <c>{prefix}norm</c> (when the config has final norms).</summary>
    public static Decoder Load(WeightSource weights, string prefix, TransformerConfig config)
    {
        var layers = new List<DecoderLayer>();
        for (int i = 0; i < config.DecoderLayers; i++)
            layers.Add(DecoderLayer.Load(weights, $"{prefix}layers.{i}.", config));
        return new Decoder(layers, config.FinalNorms ? LayerNormalization.Load(weights, prefix + "norm", config.DModel, config.LayerNormEpsilon) : null);
    }

    /// <summary>The layers, first to last.</summary>
    public IReadOnlyList<DecoderLayer> Layers { get; } = layers;

    /// <summary>
    /// The whole target x [batch, T, d_model] (left as it is) over <paramref name="memory"/> [batch, S, d_model] → a new
    /// [batch, T, d_model]. <paramref name="targetMask"/> is the self-attention mask (causal for autoregressive decoding),
    /// <paramref name="memoryMask"/> the cross-attention's (the source's padding).
    /// </summary>
    public DeviceTensor Forward(DeviceTensor x, DeviceTensor memory, AttentionMask targetMask, AttentionMask memoryMask) =>
        LayerStack.Run(x, Layers, norm, (layer, _, h) => layer.Forward(h, memory, targetMask, memoryMask));

    /// <summary>
    /// One cached decoding step: x [batch, 1, d_model] at <paramref name="position"/> (left as it is) → a new
    /// [batch, 1, d_model]; each layer appends to and attends over its own cache.
    /// </summary>
    public DeviceTensor ForwardStep(DeviceTensor x, IReadOnlyList<LayerCache> caches, int position, AttentionMask memoryMask) =>
        LayerStack.Run(x, Layers, norm, (layer, i, h) => layer.ForwardStep(h, caches[i], position, memoryMask));

    /// <summary>One cache per layer for decoding up to <paramref name="capacity"/> tokens over <paramref name="memory"/>.</summary>
    public LayerCache[] CreateCaches(DeviceTensor memory, int capacity)
    {
        var caches = new List<LayerCache>();
        try
        {
            foreach (var layer in Layers)
                caches.Add(layer.CreateCache(memory, capacity));
            return [.. caches];
        }
        catch
        {
            foreach (var cache in caches)
                cache.Dispose();
            throw;
        }
    }

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        foreach (var layer in Layers)
            layer.Dispose();
        norm?.Dispose();
    }
}
