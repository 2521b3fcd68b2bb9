using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>
/// The residual connection around each sublayer: post-LN (the paper) computes LayerNorm(x + f(x)); pre-LN computes
/// x + f(LayerNorm(x)).
/// </summary>
public sealed class SublayerConnection(LayerNormalization norm, bool normFirst) : IDisposable
{
    /// <summary>Loads the norm <paramref name="name"/> of d_model.</summary>
    public static SublayerConnection Load(WeightSource weights, string name, TransformerConfig config) =>
        new(LayerNormalization.Load(weights, name, config.DModel, config.LayerNormEpsilon), config.NormFirst);

    /// <summary>A new tensor: the sublayer <paramref name="sublayer"/> applied to <paramref name="x"/> with its residual and norm.</summary>
    public DeviceTensor Forward(DeviceTensor x, Func<DeviceTensor, DeviceTensor> sublayer)
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

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose() => norm.Dispose();
}
