using System.Text.Json;
using System.Text.Json.Serialization;
using GpuAttention.Ops;
using GpuAttention.Problems;

namespace GpuAttention.Model;

/// <summary>
/// A BERT-family encoder's <c>config.json</c> in Hugging Face's own format. Keys this library does not read (Hugging Face
/// configs carry many: dropout, initializer range, torch dtype, …) are left alone; the ones it reads are checked.
/// </summary>
public sealed record BertConfig
{
    /// <summary>Must be <c>bert</c>.</summary>
    [JsonPropertyName("model_type")] public string? ModelType { get; init; }
    /// <summary>Hugging Face's model classes; every one must be a BERT class.</summary>
    [JsonPropertyName("architectures")] public string[]? Architectures { get; init; }
    /// <summary>Hidden width d_model.</summary>
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; }
    /// <summary>Attention heads (hidden_size must be a multiple).</summary>
    [JsonPropertyName("num_attention_heads")] public int Heads { get; init; }
    /// <summary>Encoder layers.</summary>
    [JsonPropertyName("num_hidden_layers")] public int Layers { get; init; }
    /// <summary>Feed-forward hidden width.</summary>
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; }
    /// <summary>Feed-forward activation: <c>gelu</c> (exact erf), or its tanh approximation <c>gelu_new</c> / <c>gelu_pytorch_tanh</c>.</summary>
    [JsonPropertyName("hidden_act")] public string HiddenActivation { get; init; } = "gelu";
    /// <summary>Layer norm epsilon.</summary>
    [JsonPropertyName("layer_norm_eps")] public float LayerNormEpsilon { get; init; } = 1e-12f;
    /// <summary>Rows of the learned position table: the longest input.</summary>
    [JsonPropertyName("max_position_embeddings")] public int MaxPositions { get; init; }
    /// <summary>Rows of the token-type (segment) table.</summary>
    [JsonPropertyName("type_vocab_size")] public int TypeVocabulary { get; init; } = 2;
    /// <summary>Rows of the word table.</summary>
    [JsonPropertyName("vocab_size")] public int Vocabulary { get; init; }

    /// <summary>The feed-forward activation <see cref="HiddenActivation"/> names.</summary>
    [JsonIgnore] public Activation FeedForwardActivation => HiddenActivation == "gelu" ? Activation.Gelu : Activation.GeluTanh;

    /// <summary>d_model / heads.</summary>
    [JsonIgnore] public int HeadDim => HiddenSize / Heads;

    /// <summary>Reads and checks <paramref name="path"/>; a broken or unsupported config is an <see cref="InvalidDataException"/> naming it.</summary>
    public static BertConfig Load(string path)
    {
        BertConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<BertConfig>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"BERT config '{path}' is not valid JSON: {e.Message}", e);
        }
        if (config is null)
            throw new InvalidDataException($"BERT config '{path}' is empty.");
        config.Validate(path);
        return config;
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming <paramref name="source"/> when a value is unsupported.</summary>
    internal void Validate(string source)
    {
        void Require(bool ok, string what)
        {
            if (!ok)
                throw new InvalidDataException($"BERT config '{source}': {what}.");
        }
        Require(ModelType == "bert" && (Architectures ?? []).All(a => a.StartsWith("Bert", StringComparison.Ordinal)),
            $"only BERT models load here; model_type is '{ModelType}', architectures [{string.Join(", ", Architectures ?? [])}]");
        Require(HiddenSize > 0 && Heads > 0 && HiddenSize % Heads == 0, $"hidden_size ({HiddenSize}) must be a positive multiple of num_attention_heads ({Heads})");
        Require(HeadDim <= Attention.MaxHeadDim, $"the head dimension {HeadDim} is above the fused attention's {Attention.MaxHeadDim}");
        Require(Layers > 0 && IntermediateSize > 0, $"num_hidden_layers ({Layers}) and intermediate_size ({IntermediateSize}) must be positive");
        Require(HiddenActivation is "gelu" or "gelu_new" or "gelu_pytorch_tanh",
            $"hidden_act '{HiddenActivation}' is not supported: 'gelu' (exact erf), 'gelu_new' or 'gelu_pytorch_tanh' (its tanh approximation)");
        Require(LayerNormEpsilon > 0 && float.IsFinite(LayerNormEpsilon), $"layer_norm_eps must be positive, got {LayerNormEpsilon}");
        Require(MaxPositions > 0 && TypeVocabulary > 0 && Vocabulary > 0,
            $"max_position_embeddings ({MaxPositions}), type_vocab_size ({TypeVocabulary}) and vocab_size ({Vocabulary}) must be positive");
    }
}
