using System.Reflection;
using GpuAttention.Ops;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace GpuAttention.Model;

/// <summary>
/// The hyper-parameters of a seq2seq Transformer, read from the <c>config.json</c> beside its weights (README.md has the
/// table of keys). A key that is not one of these is an error naming it: a misspelt key would otherwise load a
/// different model without a word.
/// </summary>
public sealed record TransformerConfig
{
    /// <summary>Model width.</summary>
    [JsonPropertyName("d_model")] public int DModel { get; init; } = 512;
    /// <summary>Attention heads; d_model must be a multiple.</summary>
    [JsonPropertyName("heads")] public int Heads { get; init; } = 8;
    /// <summary>Feed-forward hidden width.</summary>
    [JsonPropertyName("d_ff")] public int DFeedForward { get; init; } = 2048;
    /// <summary>Encoder layers (0 allowed).</summary>
    [JsonPropertyName("encoder_layers")] public int EncoderLayers { get; init; } = 6;
    /// <summary>Decoder layers (at least 1).</summary>
    [JsonPropertyName("decoder_layers")] public int DecoderLayers { get; init; } = 6;
    /// <summary>Source vocabulary size.</summary>
    [JsonPropertyName("src_vocab")] public int SourceVocabulary { get; init; }
    /// <summary>Target vocabulary size.</summary>
    [JsonPropertyName("tgt_vocab")] public int TargetVocabulary { get; init; }
    /// <summary>Attention score: <c>dot</c> (the paper's scaled dot product) or <c>additive</c> (wᵀ·tanh(W_q·q + W_k·k)).</summary>
    [JsonPropertyName("score")] public string Score { get; init; } = "dot";
    /// <summary>Attention weights: <c>softmax</c> (the paper's) or <c>relu</c> (ReLU(score) divided by the visible keys).</summary>
    [JsonPropertyName("normalizer")] public string Normalizer { get; init; } = "softmax";
    /// <summary>The additive score's width d_a (default: the head dimension d_k).</summary>
    [JsonPropertyName("additive_dim")] public int? AdditiveDim { get; init; }
    /// <summary>Feed-forward activation: <c>relu</c> or <c>gelu</c>.</summary>
    [JsonPropertyName("activation")] public string Activation { get; init; } = "relu";
    /// <summary>Pre-LN (norm before each sublayer) when true; the paper's post-LN otherwise.</summary>
    [JsonPropertyName("norm_first")] public bool NormFirst { get; init; }
    /// <summary>Layer norm epsilon.</summary>
    [JsonPropertyName("layer_norm_eps")] public float LayerNormEpsilon { get; init; } = 1e-5f;
    /// <summary>Longest sequence (rows of learned position tables; longest decoding).</summary>
    [JsonPropertyName("max_len")] public int MaxLength { get; init; } = 512;
    /// <summary><c>sinusoidal</c> (the paper), <c>learned</c> (tensors <c>src_pos_embed.weight</c>, <c>tgt_pos_embed.weight</c>) or <c>none</c>.</summary>
    [JsonPropertyName("positional")] public string Positional { get; init; } = "sinusoidal";
    /// <summary>What token embeddings are multiplied by; null (absent) means the paper's √d_model.</summary>
    [JsonPropertyName("embedding_scale")] public float? EmbeddingScale { get; init; }
    /// <summary>The target token decoding starts from.</summary>
    [JsonPropertyName("bos_id")] public int BosId { get; init; } = 1;
    /// <summary>The target token that ends a sequence.</summary>
    [JsonPropertyName("eos_id")] public int EosId { get; init; } = 2;
    /// <summary>Whether the encoder and decoder stacks end with a layer norm (nn.Transformer's do).</summary>
    [JsonPropertyName("final_norms")] public bool FinalNorms { get; init; } = true;

    /// <summary>d_k = d_model / heads.</summary>
    [JsonIgnore] public int HeadDim => DModel / Heads;

    /// <summary>The additive score's width d_a: <see cref="AdditiveDim"/>, else the head dimension.</summary>
    [JsonIgnore] public int AdditiveWidth => AdditiveDim ?? HeadDim;

    /// <summary><see cref="Positional"/> as a value.</summary>
    [JsonIgnore] public PositionalEncoding PositionalEncoding => Positional switch
    {
        "learned" => PositionalEncoding.Learned,
        "none" => PositionalEncoding.None,
        _ => PositionalEncoding.Sinusoidal,
    };

    /// <summary><see cref="EmbeddingScale"/>, or √d_model when absent.</summary>
    [JsonIgnore] public float EmbeddingScaleOrDefault => EmbeddingScale ?? MathF.Sqrt(DModel);

    /// <summary>The keys a config file may hold.</summary>
    public static IReadOnlyList<string> Keys { get; } = typeof(TransformerConfig).GetProperties()
        .Select(p => p.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name)
        .OfType<string>()
        .ToList();

    /// <summary>Reads and validates a config file.</summary>
    /// <exception cref="InvalidDataException">The file is not JSON, holds a key not in <see cref="Keys"/>, or a value is inconsistent.</exception>
    public static TransformerConfig Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"No model config at '{path}'.", path);
        TransformerConfig? config;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"Model config '{path}' is not a JSON object.");
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!Keys.Contains(property.Name))
                    throw new InvalidDataException(
                        $"Model config '{path}': unknown key '{property.Name}'; the keys are {string.Join(", ", Keys)}.");
                if (!seen.Add(property.Name))
                    throw new InvalidDataException($"Model config '{path}': key '{property.Name}' appears twice.");
            }
            config = document.RootElement.Deserialize<TransformerConfig>();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Model config '{path}' is not valid: {e.Message}", e);
        }
        if (config is null)
            throw new InvalidDataException($"Model config '{path}' is empty.");
        config.Validate(path);
        return config;
    }

    /// <summary>Throws <see cref="InvalidDataException"/> naming the first inconsistent field.</summary>
    public void Validate(string source = "config")
    {
        void Require(bool ok, string what)
        {
            if (!ok)
                throw new InvalidDataException($"Model config '{source}': {what}.");
        }
        Require(DModel > 0 && Heads > 0 && DModel % Heads == 0, $"d_model ({DModel}) must be a positive multiple of heads ({Heads})");
        Require(DFeedForward > 0, $"d_ff must be positive, got {DFeedForward}");
        Require(EncoderLayers >= 0 && DecoderLayers > 0, $"need ≥ 0 encoder and ≥ 1 decoder layers, got {EncoderLayers} and {DecoderLayers}");
        Require(SourceVocabulary > 0 && TargetVocabulary > 0, $"vocabularies must be positive, got {SourceVocabulary} and {TargetVocabulary}");
        Require(Activation is "relu" or "gelu", $"activation must be relu or gelu, got '{Activation}'");
        Require(Score is "dot" or "additive", $"score must be dot or additive, got '{Score}'");
        Require(Normalizer is "softmax" or "relu", $"normalizer must be softmax or relu, got '{Normalizer}'");
        Require(AdditiveDim is null || (Score == "additive" && AdditiveDim > 0 && AdditiveDim <= AdditiveAttention.MaxWidth),
            $"additive_dim must be 1..{AdditiveAttention.MaxWidth} with score additive, got {AdditiveDim} with score {Score}");
        Require(Positional is "sinusoidal" or "learned" or "none", $"positional must be sinusoidal, learned or none, got '{Positional}'");
        Require(EmbeddingScale is null || float.IsFinite(EmbeddingScale.Value), $"embedding_scale must be finite, got {EmbeddingScale}");
        Require(LayerNormEpsilon > 0 && float.IsFinite(LayerNormEpsilon), $"layer_norm_eps must be positive, got {LayerNormEpsilon}");
        Require(MaxLength > 0, $"max_len must be positive, got {MaxLength}");
        Require(BosId >= 0 && BosId < TargetVocabulary && EosId >= 0 && EosId < TargetVocabulary,
            $"bos_id {BosId} and eos_id {EosId} must be target tokens (0..{TargetVocabulary - 1})");
    }
}
