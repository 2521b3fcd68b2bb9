using GpuAttention.Ops;
using GpuAttention.Runtime;
using GpuAttention.Weights;

namespace GpuAttention.Model;

/// <summary>
/// The paper's encoder–decoder Transformer with PyTorch <c>nn.Transformer</c> weight names: <c>encoder.layers.N.*</c>,
/// <c>decoder.layers.N.*</c>, <c>encoder.norm</c>, <c>decoder.norm</c>, plus <c>src_embed</c>, <c>tgt_embed</c> and the
/// output projection <c>generator</c>. Loaded from a directory holding <c>config.json</c> and <c>model.safetensors</c>.
/// </summary>
public sealed class Transformer : IDisposable
{
    private readonly Embeddings sourceEmbeddings, targetEmbeddings;
    private readonly EncoderLayer[] encoderLayers;
    private readonly DecoderLayer[] decoderLayers;
    private readonly LayerNormalization? encoderNorm, decoderNorm;
    private readonly Linear generator;

    public Transformer(WeightSource weights, TransformerConfig config)
    {
        config.Validate();
        Config = config;
        bool learned = config.Positional == "learned";
        sourceEmbeddings = new Embeddings(weights, "src_embed", "src_pos_embed", config.SourceVocabulary, config.DModel, config.MaxLength, learned);
        targetEmbeddings = new Embeddings(weights, "tgt_embed", "tgt_pos_embed", config.TargetVocabulary, config.DModel, config.MaxLength, learned);
        encoderLayers = Enumerable.Range(0, config.EncoderLayers).Select(i => new EncoderLayer(weights, $"encoder.layers.{i}.", config)).ToArray();
        decoderLayers = Enumerable.Range(0, config.DecoderLayers).Select(i => new DecoderLayer(weights, $"decoder.layers.{i}.", config)).ToArray();
        if (config.FinalNorms)
        {
            encoderNorm = LayerNormalization.Load(weights, "encoder.norm", config.DModel, config.LayerNormEpsilon);
            decoderNorm = LayerNormalization.Load(weights, "decoder.norm", config.DModel, config.LayerNormEpsilon);
        }
        generator = Linear.Load(weights, "generator", config.DModel, config.TargetVocabulary);
    }

    public TransformerConfig Config { get; }

    /// <summary>Loads <c>config.json</c> and <c>model.safetensors</c> from <paramref name="directory"/> onto <paramref name="device"/>.</summary>
    public static Transformer Load(ComputeDevice device, string directory)
    {
        var config = TransformerConfig.Load(Path.Combine(directory, "config.json"));
        string weightsPath = Path.Combine(directory, "model.safetensors");
        return new Transformer(new WeightSource(device, SafeTensors.Read(weightsPath), weightsPath), config);
    }

    /// <summary>
    /// Encodes <paramref name="source"/> ([batch][S] token ids, padded to one length S) whose rows have
    /// <paramref name="lengths"/> real tokens → memory [batch, S, d_model].
    /// </summary>
    public DeviceTensor Encode(int[][] source, int[] lengths)
    {
        var mask = SourceMask(source, lengths, Config.SourceVocabulary);
        var x = sourceEmbeddings.Forward(source);
        foreach (var layer in encoderLayers)
        {
            var next = layer.Forward(x, mask);
            x.Dispose();
            x = next;
        }
        return encoderNorm is null ? x : Normalized(encoderNorm, x);
    }

    /// <summary>Runs the decoder over whole target sequences [batch][T] (teacher forcing) → [batch, T, d_model].</summary>
    public DeviceTensor Decode(int[][] target, DeviceTensor memory, int[] sourceLengths)
    {
        CheckTokens(target, nameof(target), Config.TargetVocabulary);
        var memoryMask = AttentionMask.KeyPadding(sourceLengths);
        var x = targetEmbeddings.Forward(target);
        foreach (var layer in decoderLayers)
        {
            var next = layer.Forward(x, memory, memoryMask);
            x.Dispose();
            x = next;
        }
        return decoderNorm is null ? x : Normalized(decoderNorm, x);
    }

    /// <summary>The output projection to the target vocabulary: [batch, T, d_model] → [batch, T, vocab] (pre-softmax).</summary>
    public DeviceTensor Logits(DeviceTensor decoderOutput) => generator.Forward(decoderOutput);

    /// <summary>Starts cached decoding over <paramref name="memory"/>: one <see cref="LayerCache"/> per decoder layer.</summary>
    public LayerCache[] CreateCaches(DeviceTensor memory, int capacity) =>
        decoderLayers.Select(layer => layer.CreateCache(memory, capacity, Config)).ToArray();

    /// <summary>
    /// One cached decoding step: <paramref name="tokens"/> (one per batch entry) at <paramref name="position"/> →
    /// logits [batch, 1, vocab]. Attends over the cached steps 0…position only, so step t costs O(t).
    /// </summary>
    public DeviceTensor DecodeStep(int[] tokens, int position, LayerCache[] caches, int[] sourceLengths)
    {
        var memoryMask = AttentionMask.KeyPadding(sourceLengths);
        var step = tokens.Select(t => new[] { t }).ToArray();
        CheckTokens(step, nameof(tokens), Config.TargetVocabulary);
        var x = targetEmbeddings.Forward(step, position);
        for (int i = 0; i < decoderLayers.Length; i++)
        {
            var next = decoderLayers[i].ForwardStep(x, caches[i], position, memoryMask);
            x.Dispose();
            x = next;
        }
        if (decoderNorm is not null)
            x = Normalized(decoderNorm, x);
        using (x)
            return Logits(x);
    }

    private static DeviceTensor Normalized(LayerNormalization norm, DeviceTensor x)
    {
        using (x)
            return norm.Forward(x);
    }

    private AttentionMask SourceMask(int[][] source, int[] lengths, int vocabulary)
    {
        CheckTokens(source, nameof(source), vocabulary);
        ArgumentNullException.ThrowIfNull(lengths);
        if (lengths.Length != source.Length)
            throw new ArgumentException($"Argument 'lengths' must have shape [{source.Length}], but has [{lengths.Length}].", nameof(lengths));
        if (source[0].Length > Config.MaxLength)
            throw new ArgumentException($"Argument 'source' has length {source[0].Length}, beyond max_len {Config.MaxLength}.", nameof(source));
        foreach (int length in lengths)
        {
            if (length < 1 || length > source[0].Length)
                throw new ArgumentException($"Argument 'lengths' must hold values in 1..{source[0].Length}, got {length}.", nameof(lengths));
        }
        return AttentionMask.KeyPadding(lengths);
    }

    private static void CheckTokens(int[][] tokens, string name, int vocabulary)
    {
        ArgumentNullException.ThrowIfNull(tokens, name);
        if (tokens.Length == 0 || tokens[0] is null || tokens[0].Length == 0)
            throw new ArgumentException($"Argument '{name}' must hold at least one non-empty row.", name);
        int length = tokens[0].Length;
        foreach (var row in tokens)
        {
            if (row is null || row.Length != length)
                throw new ArgumentException($"Argument '{name}' must be rectangular: every row of length {length} (pad it).", name);
            foreach (int t in row)
            {
                if ((uint)t >= (uint)vocabulary)
                    throw new ArgumentOutOfRangeException(name, t, $"Token {t} is outside the vocabulary 0..{vocabulary - 1}.");
            }
        }
    }

    public void Dispose()
    {
        sourceEmbeddings.Dispose();
        targetEmbeddings.Dispose();
        foreach (var layer in encoderLayers)
            layer.Dispose();
        foreach (var layer in decoderLayers)
            layer.Dispose();
        encoderNorm?.Dispose();
        decoderNorm?.Dispose();
        generator.Dispose();
    }
}
