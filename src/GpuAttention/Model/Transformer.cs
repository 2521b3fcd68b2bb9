using GpuAttention.Ops;
using GpuAttention.Runtime;
using GpuAttention.Weights;

namespace GpuAttention.Model;

/// <summary>
/// The paper's encoder–decoder Transformer with PyTorch <c>nn.Transformer</c> weight names: <c>encoder.layers.N.*</c>,
/// <c>decoder.layers.N.*</c>, <c>encoder.norm</c>, <c>decoder.norm</c>, plus <c>src_embed</c>, <c>tgt_embed</c> and the
/// output projection <c>generator</c>. Loaded from a directory holding <c>config.json</c> and <c>model.safetensors</c>.
/// Every part is public, so a model can be run from any layer: bring your own embeddings to <see cref="Encode(DeviceTensor, int[])"/>
/// and <see cref="Decode(DeviceTensor, DeviceTensor, int[], AttentionMask, int[])"/>, or use <see cref="Encoder"/> and
/// <see cref="Decoder"/> directly.
/// </summary>
public sealed class Transformer : IDisposable
{
    /// <summary>
    /// Builds the model from <paramref name="weights"/>; a missing or misshapen tensor is an <see cref="InvalidDataException"/>
    /// naming it, and whatever was uploaded before the failure is freed.
    /// </summary>
    public Transformer(WeightSource weights, TransformerConfig config)
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        Device = weights.Device;
        int mark = weights.UploadedCount;
        try
        {
            SourceEmbeddings = Embeddings.Load(weights, "src_embed", "src_pos_embed", config.SourceVocabulary, config);
            TargetEmbeddings = Embeddings.Load(weights, "tgt_embed", "tgt_pos_embed", config.TargetVocabulary, config);
            Encoder = Encoder.Load(weights, "encoder.", config);
            Decoder = Decoder.Load(weights, "decoder.", config);
            Generator = Linear.Load(weights, "generator", config.DModel, config.TargetVocabulary);
        }
        catch
        {
            weights.DisposeUploadedSince(mark);
            throw;
        }
    }

    /// <summary>The hyper-parameters.</summary>
    public TransformerConfig Config { get; }

    /// <summary>The device the weights live on.</summary>
    public ComputeDevice Device { get; }

    /// <summary>Source token embeddings and positions.</summary>
    public Embeddings SourceEmbeddings { get; }

    /// <summary>Target token embeddings and positions.</summary>
    public Embeddings TargetEmbeddings { get; }

    /// <summary>The encoder stack.</summary>
    public Encoder Encoder { get; }

    /// <summary>The decoder stack.</summary>
    public Decoder Decoder { get; }

    /// <summary>The output projection to the target vocabulary.</summary>
    public Linear Generator { get; }

    /// <summary>The most sequences one call takes: batch·heads attention problems must fit the launch grid (65535).</summary>
    public int MaxBatch => 65535 / Config.Heads;

    /// <summary>
    /// Loads <c>config.json</c> and <c>model.safetensors</c> from <paramref name="directory"/> onto <paramref name="device"/>.
    /// A tensor of the file that the config leaves unused is an error, as is any missing or misshapen one.
    /// <paramref name="dtype"/> BF16 or F16 holds every Linear weight in that format (rounded once at load) and runs the
    /// products and the dot-product attention on operands rounded to it, accumulating in fp32; activations between ops,
    /// layer norms, softmax statistics, embeddings and biases stay F32 (README, "The model in half precision").
    /// </summary>
    public static Transformer Load(ComputeDevice device, string directory, DType dtype = DType.F32)
    {
        if (dtype is not (DType.F32 or DType.BF16 or DType.F16))
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "The model runs in F32, BF16 or F16.");
        var config = TransformerConfig.Load(Path.Combine(directory, "config.json"));
        string weightsPath = Path.Combine(directory, "model.safetensors");
        var weights = new WeightSource(device, SafeTensors.Read(weightsPath), weightsPath) { LinearDType = dtype };
        var model = new Transformer(weights, config);
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
    /// Encodes <paramref name="source"/> ([batch][S] token ids, padded to one length S) whose rows have
    /// <paramref name="lengths"/> real tokens → memory [batch, S, d_model].
    /// </summary>
    public DeviceTensor Encode(int[][] source, int[] lengths)
    {
        CheckTokens(source, nameof(source), Config.SourceVocabulary);
        var mask = SourceMask(source.Length, source[0].Length, lengths, nameof(source));
        using var x = SourceEmbeddings.Forward(source);
        return Encoder.Forward(x, mask);
    }

    /// <summary>
    /// Encodes already-embedded input <paramref name="embedded"/> [batch, S, d_model] (positions included, left as it is)
    /// whose rows have <paramref name="lengths"/> real tokens → memory [batch, S, d_model].
    /// </summary>
    public DeviceTensor Encode(DeviceTensor embedded, int[] lengths)
    {
        CheckEmbedded(embedded, nameof(embedded));
        return Encoder.Forward(embedded, SourceMask(embedded.Shape[0], embedded.Shape[1], lengths, nameof(embedded)));
    }

    /// <summary>
    /// Runs the decoder over whole target sequences [batch][T] (teacher forcing) → [batch, T, d_model].
    /// <paramref name="targetMask"/> is the self-attention mask (default causal); <paramref name="targetLengths"/>, when
    /// given, hides each row's padding from self-attention as well.
    /// </summary>
    public DeviceTensor Decode(int[][] target, DeviceTensor memory, int[] sourceLengths, AttentionMask? targetMask = null,
        int[]? targetLengths = null)
    {
        CheckTokens(target, nameof(target), Config.TargetVocabulary);
        CheckMemory(memory, target.Length, sourceLengths);
        var selfMask = TargetMask(target.Length, target[0].Length, targetMask, targetLengths);
        using var x = TargetEmbeddings.Forward(target);
        return Decoder.Forward(x, memory, selfMask, AttentionMask.KeyPadding(sourceLengths));
    }

    /// <summary>
    /// Runs the decoder over already-embedded targets <paramref name="embedded"/> [batch, T, d_model] (left as it is)
    /// → [batch, T, d_model]; the masks as in <see cref="Decode(int[][], DeviceTensor, int[], AttentionMask, int[])"/>.
    /// </summary>
    public DeviceTensor Decode(DeviceTensor embedded, DeviceTensor memory, int[] sourceLengths, AttentionMask? targetMask = null,
        int[]? targetLengths = null)
    {
        CheckEmbedded(embedded, nameof(embedded));
        CheckMemory(memory, embedded.Shape[0], sourceLengths);
        var selfMask = TargetMask(embedded.Shape[0], embedded.Shape[1], targetMask, targetLengths);
        return Decoder.Forward(embedded, memory, selfMask, AttentionMask.KeyPadding(sourceLengths));
    }

    /// <summary>The output projection to the target vocabulary: [batch, T, d_model] → [batch, T, vocab] (pre-softmax).</summary>
    public DeviceTensor Logits(DeviceTensor decoderOutput) => Generator.Forward(decoderOutput);

    /// <summary>Starts cached decoding of up to <paramref name="capacity"/> tokens over <paramref name="memory"/>: one cache per decoder layer.</summary>
    public LayerCache[] CreateCaches(DeviceTensor memory, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        return Decoder.CreateCaches(memory, capacity);
    }

    /// <summary>
    /// One cached decoding step: <paramref name="tokens"/> (one per batch entry) at <paramref name="position"/> →
    /// logits [batch, 1, vocab]. Attends over the cached steps 0…position only, so step t costs O(t).
    /// </summary>
    public DeviceTensor DecodeStep(int[] tokens, int position, LayerCache[] caches, int[] sourceLengths)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(caches);
        if (caches.Length != Decoder.Layers.Count)
            throw new ArgumentException($"Argument 'caches' must hold one cache per decoder layer ({Decoder.Layers.Count}), but holds {caches.Length}.", nameof(caches));
        int capacity = caches.Length == 0 ? 0 : caches[0].Capacity;
        if (position < 0 || position >= capacity)
            throw new ArgumentOutOfRangeException(nameof(position), position, $"Argument 'position' must be in 0..{capacity - 1} (the caches' capacity).");
        var step = tokens.Select(t => new[] { t }).ToArray();
        CheckTokens(step, nameof(tokens), Config.TargetVocabulary);
        if (sourceLengths is null || sourceLengths.Length != tokens.Length)
            throw new ArgumentException($"Argument 'sourceLengths' must have shape [{tokens.Length}] (one per token), but has [{sourceLengths?.Length ?? 0}].", nameof(sourceLengths));
        using var x = TargetEmbeddings.Forward(step, position);
        using var output = Decoder.ForwardStep(x, caches, position, AttentionMask.KeyPadding(sourceLengths));
        return Logits(output);
    }

    private AttentionMask SourceMask(int batch, int length, int[] lengths, string batchArgument)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        if (batch > MaxBatch)
            throw new ArgumentException(
                $"Argument '{batchArgument}' holds {batch} sequences, more than the {MaxBatch} this model takes at once ({Config.Heads} heads each).",
                batchArgument);
        if (lengths.Length != batch)
            throw new ArgumentException($"Argument 'lengths' must have shape [{batch}], but has [{lengths.Length}].", nameof(lengths));
        if (length > Config.MaxLength)
            throw new ArgumentException($"The source has length {length}, beyond max_len {Config.MaxLength}.", nameof(lengths));
        foreach (int valid in lengths)
        {
            if (valid < 1 || valid > length)
                throw new ArgumentException($"Argument 'lengths' must hold values in 1..{length}, got {valid}.", nameof(lengths));
        }
        return AttentionMask.KeyPadding(lengths);
    }

    private static AttentionMask TargetMask(int batch, int length, AttentionMask? targetMask, int[]? targetLengths)
    {
        var mask = targetMask ?? AttentionMask.Causal;
        if (targetLengths is null)
            return mask;
        if (targetLengths.Length != batch)
            throw new ArgumentException($"Argument 'targetLengths' must have shape [{batch}], but has [{targetLengths.Length}].", nameof(targetLengths));
        foreach (int valid in targetLengths)
        {
            if (valid < 1 || valid > length)
                throw new ArgumentException($"Argument 'targetLengths' must hold values in 1..{length}, got {valid}.", nameof(targetLengths));
        }
        return mask.And(AttentionMask.KeyPadding(targetLengths));
    }

    private void CheckEmbedded(DeviceTensor embedded, string name)
    {
        ArgumentNullException.ThrowIfNull(embedded, name);
        if (!ReferenceEquals(embedded.Device, Device))
            throw new ArgumentException($"Argument '{name}' lives on another device than the model ({Device}).", name);
        if (embedded.Rank != 3 || embedded.Shape[2] != Config.DModel)
            throw new ArgumentException(
                $"Argument '{name}' must have shape [batch, length, {Config.DModel}] (d_model), but has {DeviceTensor.ShapeText(embedded.Shape)}.", name);
    }

    private void CheckMemory(DeviceTensor memory, int batch, int[] sourceLengths)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(sourceLengths);
        if (memory.Rank != 3 || memory.Shape[0] != batch || memory.Shape[2] != Config.DModel)
            throw new ArgumentException(
                $"Argument 'memory' must have shape [{batch}, S, {Config.DModel}] (batch, source length, d_model), but has {DeviceTensor.ShapeText(memory.Shape)}.",
                nameof(memory));
        SourceMask(batch, memory.Shape[1], sourceLengths, nameof(memory));
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

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        SourceEmbeddings.Dispose();
        TargetEmbeddings.Dispose();
        Encoder.Dispose();
        Decoder.Dispose();
        Generator.Dispose();
    }
}
