using System.Text.Json;
using System.Text.Json.Serialization;

namespace GpuAttention.Model;

/// <summary>The hyper-parameters of a seq2seq Transformer, read from the <c>config.json</c> beside its weights.</summary>
public sealed record TransformerConfig
{
    [JsonPropertyName("d_model")] public int DModel { get; init; } = 512;
    [JsonPropertyName("heads")] public int Heads { get; init; } = 8;
    [JsonPropertyName("d_ff")] public int DFeedForward { get; init; } = 2048;
    [JsonPropertyName("encoder_layers")] public int EncoderLayers { get; init; } = 6;
    [JsonPropertyName("decoder_layers")] public int DecoderLayers { get; init; } = 6;
    [JsonPropertyName("src_vocab")] public int SourceVocabulary { get; init; }
    [JsonPropertyName("tgt_vocab")] public int TargetVocabulary { get; init; }
    /// <summary><c>relu</c> or <c>gelu</c>.</summary>
    [JsonPropertyName("activation")] public string Activation { get; init; } = "relu";
    /// <summary>Pre-LN (norm before each sublayer) when true; the paper's post-LN otherwise.</summary>
    [JsonPropertyName("norm_first")] public bool NormFirst { get; init; }
    [JsonPropertyName("layer_norm_eps")] public float LayerNormEpsilon { get; init; } = 1e-5f;
    [JsonPropertyName("max_len")] public int MaxLength { get; init; } = 512;
    /// <summary><c>sinusoidal</c> (the paper) or <c>learned</c> (tensors <c>src_pos_embed.weight</c>, <c>tgt_pos_embed.weight</c>).</summary>
    [JsonPropertyName("positional")] public string Positional { get; init; } = "sinusoidal";
    [JsonPropertyName("pad_id")] public int PadId { get; init; }
    [JsonPropertyName("bos_id")] public int BosId { get; init; } = 1;
    [JsonPropertyName("eos_id")] public int EosId { get; init; } = 2;
    /// <summary>Whether the encoder and decoder stacks end with a layer norm (nn.Transformer's do).</summary>
    [JsonPropertyName("final_norms")] public bool FinalNorms { get; init; } = true;

    /// <summary>d_k = d_model / heads.</summary>
    [JsonIgnore] public int HeadDim => DModel / Heads;

    /// <summary>Reads and validates a config file.</summary>
    public static TransformerConfig Load(string path)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"No model config at '{path}'.", path);
        TransformerConfig? config;
        try
        {
            config = JsonSerializer.Deserialize<TransformerConfig>(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Model config '{path}' is not valid JSON: {e.Message}", e);
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
        Require(Positional is "sinusoidal" or "learned", $"positional must be sinusoidal or learned, got '{Positional}'");
        Require(LayerNormEpsilon > 0, $"layer_norm_eps must be positive, got {LayerNormEpsilon}");
        Require(MaxLength > 0, $"max_len must be positive, got {MaxLength}");
        Require(BosId >= 0 && BosId < TargetVocabulary && EosId >= 0 && EosId < TargetVocabulary,
            $"bos_id {BosId} and eos_id {EosId} must be target tokens (0..{TargetVocabulary - 1})");
        Require(PadId >= 0 && PadId < SourceVocabulary, $"pad_id {PadId} must be a source token");
    }
}
