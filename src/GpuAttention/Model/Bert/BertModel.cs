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
    /// <remarks>
    /// With <paramref name="dtype"/> BF16 or F16 the Linear weights are held in that format and every product runs on
    /// operands rounded to it, accumulating in fp32 (<see cref="WeightSource.LinearDType"/>; the tensor-core GEMM on CUDA);
    /// embeddings, norms and activations stay F32.
    /// </remarks>
    public static BertModel Load(ComputeDevice device, string directory, DType dtype = DType.F32)
    {
        var config = BertConfig.Load(Path.Combine(directory, "config.json"));
        string weightsPath = Path.Combine(directory, "model.safetensors");
        return FromTensors(device, SafeTensors.Read(weightsPath), config, weightsPath, dtype);
    }

    /// <summary>
    /// A model of <paramref name="config"/> from <paramref name="tensors"/> (Hugging Face names, as in <c>model.safetensors</c>;
    /// <paramref name="origin"/> names them in errors), its Linear weights in <paramref name="dtype"/>.
    /// </summary>
    public static BertModel FromTensors(ComputeDevice device, IReadOnlyDictionary<string, HostTensor> tensors, BertConfig config, string origin,
        DType dtype)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(config);
        config.Validate(origin);
        string prefix = tensors.ContainsKey("bert.embeddings.word_embeddings.weight") ? "bert." : "";
        var used = tensors.Where(t => !t.Key.StartsWith(prefix + "pooler.", StringComparison.Ordinal)).ToDictionary();
        var weights = new WeightSource(device, used, origin) { LinearDType = dtype };
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
    /// The last hidden states of <paramref name="sequences"/> (token ids, each sequence its own length, 1 … max_position_embeddings),
    /// packed without padding: a new [1, total tokens, d_model] whose rows <see cref="PackedSequences.Offsets"/>[b] … are
    /// sequence b's. Every product, norm and activation runs on the real tokens only; attention runs per sequence in the
    /// padded layout with a key-padding mask. Token types default to 0.
    /// </summary>
    public (DeviceTensor Hidden, PackedSequences Packing) ForwardPacked(IReadOnlyList<int[]> sequences, IReadOnlyList<int[]>? tokenTypes = null)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        if (sequences.Count == 0 || sequences.Any(s => s is null || s.Length == 0 || s.Length > Config.MaxPositions))
            throw new ArgumentException(
                $"Argument 'sequences' must hold at least one sequence, each of 1..{Config.MaxPositions} tokens (the model's positions).", nameof(sequences));
        int[][] types = tokenTypes is null ? [.. sequences.Select(s => new int[s.Length])] : [.. tokenTypes];
        if (types.Length != sequences.Count || types.Where((t, b) => t is null || t.Length != sequences[b].Length).Any())
            throw new ArgumentException("Argument 'tokenTypes' must hold one type per token of 'sequences'.", nameof(tokenTypes));
        var packing = new PackedSequences([.. sequences.Select(s => s.Length)]);
        var x = Embeddings.Forward([.. sequences], types);
        foreach (var layer in layers)
        {
            using var previous = x;
            x = layer.ForwardPacked(previous, packing);
        }
        return (x, packing);
    }

    /// <summary>
    /// The last hidden states [batch, L, d_model] of <paramref name="tokens"/> ([batch][L] ids, padded to one length L)
    /// whose rows have <paramref name="lengths"/> real tokens, computed as <see cref="ForwardPacked"/> does (padding costs
    /// nothing); a padding row holds a copy of its sequence's first state. Token types default to 0.
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
        if (lengths.Length != tokens.Length || lengths.Any(l => l < 1 || l > length))
            throw new ArgumentException($"Argument 'lengths' must hold {tokens.Length} lengths in 1..{length}.", nameof(lengths));
        if (tokenTypes is not null && (tokenTypes.Length != tokens.Length || tokenTypes.Any(row => row is null || row.Length != length)))
            throw new ArgumentException($"Argument 'tokenTypes' must have the shape of 'tokens' ({tokens.Length} rows of {length}).", nameof(tokenTypes));
        var (hidden, packing) = ForwardPacked([.. tokens.Select((row, b) => row[..lengths[b]])],
            tokenTypes is null ? null : [.. tokenTypes.Select((row, b) => row[..lengths[b]])]);
        using (hidden)
        {
            var padded = hidden.Device.Allocate(tokens.Length, length, Config.HiddenSize);
            var sources = new int[tokens.Length * length];
            for (int b = 0; b < tokens.Length; b++)
            for (int t = 0; t < length; t++)
                sources[b * length + t] = packing.Offsets[b] + (t < lengths[b] ? t : 0);
            HeadLayout.GatherRows(hidden, sources, padded);
            return padded;
        }
    }

    private static EncoderLayer LoadLayer(WeightSource weights, string prefix, BertConfig config)
    {
        int d = config.HiddenSize;
        Linear Dense(string name, int inFeatures, int outFeatures) => Linear.Load(weights, prefix + name, inFeatures, outFeatures);
        LayerNormalization Norm(string name) => LayerNormalization.Load(weights, prefix + name, d, config.LayerNormEpsilon);
        string[] parts = [.. new[] { "query", "key", "value" }.Select(part => $"{prefix}attention.self.{part}")];
        var queryKeyValue = new Linear(weights.LoadLinearWeightStacked([.. parts.Select(p => p + ".weight")], d, d),
            weights.LoadStacked([.. parts.Select(p => p + ".bias")], d));
        var attention = MultiHeadAttention.SelfAttention(queryKeyValue, Dense("attention.output.dense", d, d), config.Heads);
        var feedForward = new PositionwiseFeedForward(Dense("intermediate.dense", d, config.IntermediateSize),
            Dense("output.dense", config.IntermediateSize, d), config.FeedForwardActivation);
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
