using System.Text.Json;
using System.Text.RegularExpressions;
using GpuAttention.Ops;
using GpuAttention.Runtime;
using Microsoft.ML.Tokenizers;

namespace GpuAttention.Model;

/// <summary>How a sentence's token states become one vector (sentence-transformers' <c>1_Pooling/config.json</c>).</summary>
public enum SentencePooling
{
    /// <summary>The mean of the real tokens' states (padding excluded).</summary>
    Mean,
    /// <summary>The state of the first token, [CLS].</summary>
    Cls,
}

/// <summary>
/// Sentence embeddings from a BERT-family encoder: texts in, L2-normalised vectors out (pooled and normalised on the
/// device; only the [batch, d] vectors come back). Tokenization is Hugging Face's BERT
/// WordPiece (Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/> over the folder's <c>vocab.txt</c>: lower-casing, accent
/// stripping, punctuation and CJK splitting, then greedy longest-match word pieces), with [CLS] … [SEP] around each text
/// and truncation to the model's maximum sequence length. Texts are run in batches, packed without padding.
/// </summary>
public sealed class SentenceEmbedder : IDisposable
{
    private SentenceEmbedder(BertModel model, BertTokenizer tokenizer, SentencePooling pooling, int maxTokens)
    {
        Model = model;
        Tokenizer = tokenizer;
        Pooling = pooling;
        MaxTokens = maxTokens;
    }

    /// <summary>The encoder.</summary>
    public BertModel Model { get; }

    /// <summary>The WordPiece tokenizer of the model's vocabulary.</summary>
    public BertTokenizer Tokenizer { get; }

    /// <summary>The pooling the model's sentence-transformers config asks for (mean when it has none).</summary>
    public SentencePooling Pooling { get; }

    /// <summary>Most tokens of a text, [CLS] and [SEP] included (<c>sentence_bert_config.json</c>'s max_seq_length, else the model's positions).</summary>
    public int MaxTokens { get; }

    /// <summary>Embedding width.</summary>
    public int Dimension => Model.Config.HiddenSize;

    /// <summary>
    /// Loads a sentence-transformers folder: the BERT model (<see cref="BertModel.Load(ComputeDevice, string, DType)"/>, its Linear
    /// weights in <paramref name="dtype"/>), <c>vocab.txt</c>, and when present <c>1_Pooling/config.json</c> and
    /// <c>sentence_bert_config.json</c>.
    /// </summary>
    public static SentenceEmbedder Load(ComputeDevice device, string directory, DType dtype = DType.F32)
    {
        string vocabulary = Path.Combine(directory, "vocab.txt");
        if (!File.Exists(vocabulary))
            throw new InvalidDataException($"Model folder '{directory}' has no vocab.txt.");
        var pooling = ReadPooling(Path.Combine(directory, "1_Pooling", "config.json"));
        var model = BertModel.Load(device, directory, dtype);
        try
        {
            int maxTokens = Math.Min(model.Config.MaxPositions, ReadMaxSequenceLength(Path.Combine(directory, "sentence_bert_config.json")) ?? int.MaxValue);
            var tokenizer = BertTokenizer.Create(vocabulary, new BertOptions
            {
                LowerCaseBeforeTokenization = true,
                RemoveNonSpacingMarks = true,
                ApplyBasicTokenization = true,
                IndividuallyTokenizeCjk = true,
                SplitOnSpecialTokens = true,
                PreTokenizer = HuggingFaceBasicTokenization(),
            });
            return new SentenceEmbedder(model, tokenizer, pooling, maxTokens);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The token ids of <paramref name="text"/>: [CLS], its word pieces (truncated to <see cref="MaxTokens"/> − 2), [SEP].</summary>
    public int[] Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var pieces = Tokenizer.EncodeToIds(text, addSpecialTokens: false);
        int kept = Math.Min(pieces.Count, MaxTokens - 2);
        var ids = new int[kept + 2];
        ids[0] = Tokenizer.ClassificationTokenId;
        for (int i = 0; i < kept; i++)
            ids[i + 1] = pieces[i];
        ids[^1] = Tokenizer.SeparatorTokenId;
        return ids;
    }

    /// <summary>One L2-normalised vector of <see cref="Dimension"/> floats per text, in order; <paramref name="batchSize"/> texts per forward pass.</summary>
    public float[][] Embed(IReadOnlyList<string> texts, int batchSize = 32)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var tokens = texts.Select((text, i) => text is null
            ? throw new ArgumentException($"Argument 'texts' holds null at {i}.", nameof(texts))
            : Tokenize(text)).ToArray();
        var result = new float[texts.Count][];
        for (int first = 0; first < tokens.Length; first += batchSize)
        {
            var batch = tokens[first..Math.Min(tokens.Length, first + batchSize)];
            var embedded = EmbedTokens(batch);
            embedded.CopyTo(result, first);
        }
        return result;
    }

    /// <summary>Embeddings of already-tokenized texts (ids with their [CLS] and [SEP]), run as one packed batch (<see cref="BertModel.ForwardPacked"/>).</summary>
    public float[][] EmbedTokens(IReadOnlyList<int[]> tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Count == 0)
            return [];
        int width = Dimension;
        var (hidden, packing) = Model.ForwardPacked(tokens);
        var device = hidden.Device;
        float[] pooled;
        using (hidden)
        {
            // Pooling on the device, as one batched product: weights [batch, 1, L] (1/length over a sequence's real tokens,
            // or 1 on [CLS]) times its states in the padded layout [batch, L, d] — only [batch, d] comes back.
            int batch = packing.Batch, length = packing.PaddedLength;
            var weights = new float[batch * length];
            for (int b = 0; b < batch; b++)
            {
                int rows = Pooling == SentencePooling.Cls ? 1 : packing.Lengths[b];
                weights.AsSpan(b * length, rows).Fill(1f / rows);
            }
            using var padded = device.Allocate(batch, length, width);
            HeadLayout.GatherRows(hidden, packing.PaddedSources, padded);
            using var poolingWeights = device.Upload(weights, batch, 1, length);
            using var means = device.Allocate(batch, 1, width);
            MatMul.Multiply(poolingWeights, padded, means);
            Normalize.L2(means, means);
            pooled = means.ToArray();
        }
        var result = new float[tokens.Count][];
        for (int b = 0; b < tokens.Count; b++)
            result[b] = pooled.AsSpan(b * width, width).ToArray();
        return result;
    }

    /// <summary>
    /// Hugging Face's basic tokenization after normalisation: words are runs of characters that are neither whitespace nor
    /// punctuation, and each punctuation character is a token — punctuation being Unicode's P categories plus every ASCII
    /// symbol (<c>$ + &lt; = &gt; ^ ` | ~</c>), as BERT's <c>_is_punctuation</c> defines it. Microsoft.ML.Tokenizers 2.0.1's
    /// default BERT pre-tokenizer drops symbols instead (<c>$5 + 3</c> became <c>5 3</c>, and ☃ or an emoji vanished where
    /// BERT gives [UNK]), which changes the embeddings of such texts; the special tokens stay whole.
    /// </summary>
    private static RegexPreTokenizer HuggingFaceBasicTokenization() =>
        new(new Regex(@"\[(?:CLS|SEP|UNK|PAD|MASK)\]|[^\s\p{P}$+<=>^`|~]+|[\p{P}$+<=>^`|~]", RegexOptions.CultureInvariant), null);

    private static SentencePooling ReadPooling(string path)
    {
        if (!File.Exists(path))
            return SentencePooling.Mean;
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        bool Flag(string name) => document.RootElement.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.True;
        bool mean = Flag("pooling_mode_mean_tokens"), cls = Flag("pooling_mode_cls_token");
        var others = document.RootElement.EnumerateObject()
            .Where(p => p.Name.StartsWith("pooling_mode_", StringComparison.Ordinal) && p.Value.ValueKind == JsonValueKind.True
                && p.Name is not "pooling_mode_mean_tokens" and not "pooling_mode_cls_token")
            .Select(p => p.Name).ToList();
        if (mean == cls || others.Count > 0)
            throw new InvalidDataException(
                $"Pooling config '{path}' must choose exactly one of pooling_mode_mean_tokens and pooling_mode_cls_token" +
                (others.Count > 0 ? $" (also set: {string.Join(", ", others)}, not supported)" : "") + ".");
        return mean ? SentencePooling.Mean : SentencePooling.Cls;
    }

    private static int? ReadMaxSequenceLength(string path)
    {
        if (!File.Exists(path))
            return null;
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.TryGetProperty("max_seq_length", out var value) ? value.GetInt32() : null;
    }

    /// <summary>Frees the device memory the model owns.</summary>
    public void Dispose() => Model.Dispose();
}
