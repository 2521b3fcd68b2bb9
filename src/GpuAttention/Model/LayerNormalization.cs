using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>LayerNorm with gain and bias over d_model, optionally fused with the residual add.</summary>
public sealed class LayerNormalization(DeviceTensor gain, DeviceTensor bias, float epsilon) : IDisposable
{
    /// <summary>Loads <c>{name}.weight</c> and <c>{name}.bias</c>.</summary>
    public static LayerNormalization Load(WeightSource weights, string name, int width, float epsilon) =>
        new(weights.Load(name + ".weight", width), weights.Load(name + ".bias", width), epsilon);

    /// <summary>A new LayerNorm(x + residual).</summary>
    public DeviceTensor Forward(DeviceTensor x, DeviceTensor? residual = null)
    {
        var y = x.Device.Allocate([.. x.Shape]);
        LayerNorm.Apply(x, gain, bias, y, epsilon, residual);
        return y;
    }

    /// <summary>
    /// A new [rows, d] (or <paramref name="shape"/>) LayerNorm(words[wordIds[r]] + types[typeIds[r]] + positions[positionIds[r]]):
    /// embedding rows summed and normalised in one pass (<see cref="LayerNorm.EmbeddingSum"/>).
    /// </summary>
    public DeviceTensor ForwardEmbeddingSum(ReadOnlySpan<int> wordIds, DeviceTensor words, ReadOnlySpan<int> positionIds, DeviceTensor positions,
        ReadOnlySpan<int> typeIds, DeviceTensor types, int[] shape)
    {
        var y = words.Device.Allocate(shape);
        try
        {
            LayerNorm.EmbeddingSum(wordIds, words, positionIds, positions, typeIds, types, gain, bias, y, epsilon);
            return y;
        }
        catch
        {
            y.Dispose();
            throw;
        }
    }

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        gain.Dispose();
        bias.Dispose();
    }
}
