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

    /// <summary>
    /// Sequences of tokens and their token types (each sequence's own length; ids checked by the op), packed one after
    /// another → a new [1, total tokens, d_model], positions restarting at 0 in every sequence: one
    /// <see cref="LayerNorm.EmbeddingSum"/>.
    /// </summary>
    public DeviceTensor Forward(int[][] tokens, int[][] tokenTypes) =>
        norm.ForwardEmbeddingSum([.. tokens.SelectMany(row => row)], words, [.. tokens.SelectMany(row => Enumerable.Range(0, row.Length))], positions,
            [.. tokenTypes.SelectMany(row => row)], segments, [1, tokens.Sum(row => row.Length), words.Shape[1]]);

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        words.Dispose();
        positions.Dispose();
        segments.Dispose();
        norm.Dispose();
    }
}
