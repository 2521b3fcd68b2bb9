using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>BERT's embeddings: LayerNorm(word + position + token type), positions 0, 1, … from a learned table.</summary>
public sealed class BertEmbeddings(DeviceTensor words, DeviceTensor positions, DeviceTensor segments, LayerNormalization norm) : IDisposable
{
    /// <summary>Loads <c>{prefix}embeddings.word_embeddings</c>, <c>position_embeddings</c>, <c>token_type_embeddings</c> and <c>LayerNorm</c>.</summary>
    public static BertEmbeddings Load(WeightSource weights, string prefix, BertConfig config) =>
        new(weights.Load(prefix + "embeddings.word_embeddings.weight", config.Vocabulary, config.HiddenSize),
            weights.Load(prefix + "embeddings.position_embeddings.weight", config.MaxPositions, config.HiddenSize),
            weights.Load(prefix + "embeddings.token_type_embeddings.weight", config.TypeVocabulary, config.HiddenSize),
            LayerNormalization.Load(weights, prefix + "embeddings.LayerNorm", config.HiddenSize, config.LayerNormEpsilon));

    /// <summary>tokens and token types, [batch][length] each (ids checked by the gathers) → a new [batch, length, d_model].</summary>
    public DeviceTensor Forward(int[][] tokens, int[][] tokenTypes)
    {
        int batch = tokens.Length, length = tokens[0].Length, width = words.Shape[1];
        var device = words.Device;
        using var sum = device.Allocate(batch, length, width);
        using (var part = device.Allocate(batch, length, width))
        {
            Elementwise.EmbeddingGather(tokens.SelectMany(row => row).ToArray(), words, sum);
            Elementwise.EmbeddingGather(Enumerable.Range(0, batch).SelectMany(_ => Enumerable.Range(0, length)).ToArray(), positions, part);
            Elementwise.Add(sum, part, sum);
            Elementwise.EmbeddingGather(tokenTypes.SelectMany(row => row).ToArray(), segments, part);
            Elementwise.Add(sum, part, sum);
        }
        return norm.Forward(sum);
    }

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        words.Dispose();
        positions.Dispose();
        segments.Dispose();
        norm.Dispose();
    }
}
