using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>The encoder stack: N encoder layers, then (nn.Transformer's) final layer norm.</summary>
public sealed class Encoder(IReadOnlyList<EncoderLayer> layers, LayerNormalization? norm) : IDisposable
{
    /// <summary>Loads <c>{prefix}layers.0.</c> … and <c>{prefix}norm</c> (when the config has final norms).</summary>
    public static Encoder Load(WeightSource weights, string prefix, TransformerConfig config)
    {
        var layers = new List<EncoderLayer>();
        for (int i = 0; i < config.EncoderLayers; i++)
            layers.Add(EncoderLayer.Load(weights, $"{prefix}layers.{i}.", config));
        return new Encoder(layers, config.FinalNorms ? LayerNormalization.Load(weights, prefix + "norm", config.DModel, config.LayerNormEpsilon) : null);
    }

    /// <summary>The layers, first to last.</summary>
    public IReadOnlyList<EncoderLayer> Layers { get; } = layers;

    /// <summary>x [batch, S, d_model] (left as it is) → a new memory [batch, S, d_model]; <paramref name="mask"/> hides padding.</summary>
    public DeviceTensor Forward(DeviceTensor x, AttentionMask mask) =>
        LayerStack.Run(x, Layers, norm, (layer, _, h) => layer.Forward(h, mask));

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        foreach (var layer in Layers)
            layer.Dispose();
        norm?.Dispose();
    }
}
