using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;
using GpuAttention.Weights;

namespace GpuAttention.Model;

/// <summary>
/// A BERT-family encoder loaded from a Hugging Face folder (<c>config.json</c>, <c>model.safetensors</c>): the embeddings,
/// then <see cref="BertConfig.Layers"/> post-LN encoder layers — the same <see cref="EncoderLayer"/> the Transformer uses,
/// built from Hugging Face's tensor names (<c>encoder.layer.N.attention.self.query</c>, …, with or without the <c>bert.</c>
/// prefix). The pooler, when the file has one, is not used (sentence embeddings pool the hidden states instead).
/// </summary>
public sealed class BertModel : IDisposable
{
    private readonly List<EncoderLayer> layers = [];

    private BertModel(WeightSource weights, string prefix, BertConfig config)
    {
        Config = config;
        int mark = weights.UploadedCount;
        try
        {
            Embeddings = BertEmbeddings.Load(weights, prefix, config);
            for (int i = 0; i < config.Layers; i++)
                layers.Add(LoadLayer(weights, $"{prefix}encoder.layer.{i}.", config));
        }
        catch
        {
            weights.DisposeUploadedSince(mark);
            throw;
        }
    }

    /// <summary>The model's configuration.</summary>
    public BertConfig Config { get; }

    /// <summary>The embeddings module.</summary>
    public BertEmbeddings Embeddings { get; } = null!;

    /// <summary>The encoder layers, first to last.</summary>
    public IReadOnlyList<EncoderLayer> Layers => layers;

    /// <summary>
    /// Loads <c>config.json</c> and <c>model.safetensors</c> from <paramref name="directory"/> onto <paramref name="device"/>.
    /// A missing or misshapen tensor, an unsupported config, or a tensor of the file the model does not use (other than the
    /// pooler) is an <see cref="InvalidDataException"/> naming it.
    /// </summary>
    public static BertModel Load(ComputeDevice device, string directory)
    {
        var config = BertConfig.Load(Path.Combine(directory, "config.json"));
        string weightsPath = Path.Combine(directory, "model.safetensors");
        var tensors = SafeTensors.Read(weightsPath);
        string prefix = tensors.ContainsKey("bert.embeddings.word_embeddings.weight") ? "bert." : "";
        var used = tensors.Where(t => !t.Key.StartsWith(prefix + "pooler.", StringComparison.Ordinal)).ToDictionary();
        var weights = new WeightSource(device, used, weightsPath);
        var model = new BertModel(weights, prefix, config);
        try
        {
            weights.ThrowIfUnused();
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    /// <summary>
    /// The last hidden states [batch, L, d_model] of <paramref name="tokens"/> ([batch][L] ids, padded to one length L ≤
    /// max_position_embeddings) whose rows have <paramref name="lengths"/> real tokens (padding is hidden from attention);
    /// token types default to 0.
    /// </summary>
    public DeviceTensor Forward(int[][] tokens, int[] lengths, int[][]? tokenTypes = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(lengths);
        if (tokens.Length == 0 || tokens[0] is null || tokens[0].Length == 0)
            throw new ArgumentException("Argument 'tokens' must hold at least one non-empty row.", nameof(tokens));
        int length = tokens[0].Length;
        if (tokens.Any(row => row is null || row.Length != length))
            throw new ArgumentException($"Argument 'tokens' must have rows of one length ({length}, the first row's).", nameof(tokens));
        if (length > Config.MaxPositions)
            throw new ArgumentException($"Argument 'tokens' has rows of {length} tokens, more than the model's {Config.MaxPositions} positions.", nameof(tokens));
        if (lengths.Length != tokens.Length || lengths.Any(l => l < 1 || l > length))
            throw new ArgumentException($"Argument 'lengths' must hold {tokens.Length} lengths in 1..{length}.", nameof(lengths));
        tokenTypes ??= [.. tokens.Select(row => new int[row.Length])];
        if (tokenTypes.Length != tokens.Length || tokenTypes.Any(row => row is null || row.Length != length))
            throw new ArgumentException($"Argument 'tokenTypes' must have the shape of 'tokens' ({tokens.Length} rows of {length}).", nameof(tokenTypes));
        var mask = AttentionMask.KeyPadding(lengths);
        var x = Embeddings.Forward(tokens, tokenTypes);
        foreach (var layer in layers)
        {
            using var previous = x;
            x = layer.Forward(previous, mask);
        }
        return x;
    }

    private static EncoderLayer LoadLayer(WeightSource weights, string prefix, BertConfig config)
    {
        int d = config.HiddenSize;
        Linear Dense(string name, int inFeatures, int outFeatures) => Linear.Load(weights, prefix + name, inFeatures, outFeatures);
        LayerNormalization Norm(string name) => LayerNormalization.Load(weights, prefix + name, d, config.LayerNormEpsilon);
        var attention = new MultiHeadAttention(Dense("attention.self.query", d, d), Dense("attention.self.key", d, d),
            Dense("attention.self.value", d, d), Dense("attention.output.dense", d, d), config.Heads);
        var feedForward = new PositionwiseFeedForward(Dense("intermediate.dense", d, config.IntermediateSize),
            Dense("output.dense", config.IntermediateSize, d), Activation.Gelu);
        return new EncoderLayer(attention, feedForward, new SublayerConnection(Norm("attention.output.LayerNorm"), normFirst: false),
            new SublayerConnection(Norm("output.LayerNorm"), normFirst: false));
    }

    /// <summary>Frees the device memory this model owns.</summary>
    public void Dispose()
    {
        Embeddings?.Dispose();
        foreach (var layer in layers)
            layer.Dispose();
    }
}
