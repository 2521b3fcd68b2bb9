using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>How token positions enter the embeddings.</summary>
public enum PositionalEncoding
{
    /// <summary>The paper's PE(pos, 2i) = sin(pos/10000^(2i/d)), PE(pos, 2i+1) = cos(…), added.</summary>
    Sinusoidal,
    /// <summary>A learned table of max_len rows, added.</summary>
    Learned,
    /// <summary>No positions (a model that brings its own, or needs none).</summary>
    None,
}

/// <summary>Token embedding times a scale (√d_model in the paper) plus the positional encoding.</summary>
public sealed class Embeddings(DeviceTensor table, DeviceTensor? learnedPositions, PositionalEncoding positional, float scale) : IDisposable
{
    private readonly int width = table.Shape[1];

    /// <summary>
    /// Loads <c>{name}.weight</c> [vocabulary, d_model] and, for learned positions, <c>{positionsName}.weight</c>
    /// [max_len, d_model].
    /// </summary>
    public static Embeddings Load(WeightSource weights, string name, string positionsName, int vocabulary, TransformerConfig config) =>
        new(weights.Load(name + ".weight", vocabulary, config.DModel),
            config.PositionalEncoding == PositionalEncoding.Learned ? weights.Load(positionsName + ".weight", config.MaxLength, config.DModel) : null,
            config.PositionalEncoding, config.EmbeddingScaleOrDefault);

    /// <summary>tokens [batch][length] at positions firstPosition… → a new [batch, length, d_model].</summary>
    public DeviceTensor Forward(int[][] tokens, int firstPosition = 0)
    {
        int batch = tokens.Length, length = tokens[0].Length;
        var flat = tokens.SelectMany(row => row).ToArray();
        var device = table.Device;
        var x = device.Allocate(batch, length, width);
        try
        {
            Elementwise.EmbeddingGather(flat, table, x, scale);
            switch (positional)
            {
                case PositionalEncoding.Sinusoidal:
                    Elementwise.AddPositionalEncoding(x, x, firstPosition);
                    break;
                case PositionalEncoding.Learned:
                    var positions = Enumerable.Range(0, batch).SelectMany(_ => Enumerable.Range(firstPosition, length)).ToArray();
                    using (var pe = device.Allocate(batch, length, width))
                    {
                        Elementwise.EmbeddingGather(positions, learnedPositions!, pe);
                        Elementwise.Add(x, pe, x);
                    }
                    break;
            }
            return x;
        }
        catch
        {
            x.Dispose();
            throw;
        }
    }

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        table.Dispose();
        learnedPositions?.Dispose();
    }
}
