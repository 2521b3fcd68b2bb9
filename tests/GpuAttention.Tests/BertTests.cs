using GpuAttention.Reference;
using GpuAttention.Model;
using GpuAttention.Runtime;

namespace GpuAttention.Tests;

/// <summary>The BERT encoder and sentence embeddings on the real all-MiniLM-L6-v2, against ONNX Runtime and the vocabulary.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class BertTests(ITestOutputHelper output)
{
    /// <summary>The model folder, or null (after saying so in the test's output) when it is not provided and not required.</summary>
    private string? Fixture()
    {
        string? directory = MiniLmFixture.RequireOrNull();
        if (directory is null)
            output.WriteLine("GPUATTENTION_MINILM is not set: nothing checked (run tools/minilm/provide-minilm.sh).");
        return directory;
    }

    /// <summary>Twenty-two varied texts: 3 tokens up to the 128 of the longest (with [CLS] and [SEP]).</summary>
    public static readonly string[] Sentences =
    [
        "Hello",
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The girl is carrying a baby.",
        "A man is riding a horse.",
        "Two men pushed carts through the woods.",
        "Café au lait, s'il vous plaît!",
        "GPUs run attention kernels written in C# with ILGPU; no native binaries are shipped.",
        "東京は日本の首都です。",
        "Is 12345 a prime number? No: it is 3 · 5 · 823.",
        "The quick brown fox jumps over the lazy dog.",
        "Semantic search ranks documents by the cosine similarity of their embeddings.",
        "¿Dónde está la biblioteca?",
        "I can't believe it's not butter!!!",
        "v2 of the model fixed the tokenizer's handling of accents: naïve, résumé, façade.",
        "Transformers replaced recurrence with attention, and the field has not looked back since 2017.",
        "😀 emoji and ☃ symbols become unknown tokens.",
        "a",
        "The mitochondria is the powerhouse of the cell, as every student of biology learns early on.",
        "The stock market fell sharply on Monday after the central bank unexpectedly raised interest rates by half a point.",
        string.Join(" ", Enumerable.Repeat("Attention is all you need, they said, and the encoders listened.", 7))
            + " Then the decoders spoke: $5 + 3 = 8 yes.",
        "Short again.",
    ];

    [Fact]
    public void ManagedEmbeddingsMatchOnnxRuntimeBatchedAndOneByOne()
    {
        if (Fixture() is not string directory)
            return;
        var device = TestDevices.Get("cpu");
        using var embedder = SentenceEmbedder.Load(device, directory);
        var tokens = Sentences.Select(embedder.Tokenize).ToArray();
        Assert.Equal(3, tokens.Min(t => t.Length));
        Assert.Equal(128, tokens.Max(t => t.Length));
        var want = MiniLmFixture.OnnxRuntimeEmbeddings(directory, tokens);
        var batched = embedder.Embed(Sentences);
        var single = Sentences.Select(s => embedder.Embed([s])[0]).ToArray();
        var wantSingle = tokens.Select(t => MiniLmFixture.OnnxRuntimeEmbeddings(directory, [t])[0]).ToArray();
        double worstCosine = 1, worstDifference = 0;
        for (int i = 0; i < Sentences.Length; i++)
        {
            foreach (var (got, reference, how) in new[] { (batched[i], want[i], "batched"), (single[i], wantSingle[i], "one by one") })
            {
                double cosine = got.Zip(reference).Sum(p => p.First * p.Second);
                double difference = got.Zip(reference).Max(p => Math.Abs(p.First - p.Second));
                worstCosine = Math.Min(worstCosine, cosine);
                worstDifference = Math.Max(worstDifference, difference);
                Assert.True(cosine >= 0.999999 && difference <= 1e-5,
                    $"sentence {i} ({tokens[i].Length} tokens, {how}): cosine {cosine:R}, max |diff| {difference:E2}");
            }
        }
        output.WriteLine($"{Sentences.Length} sentences, {tokens.Min(t => t.Length)}–{tokens.Max(t => t.Length)} tokens: " +
            $"lowest cosine {worstCosine:R} (1 − {1 - worstCosine:E1}), largest |difference| {worstDifference:E2}");
    }

    /// <summary>The ILGPU kernels on the same model: one short sentence (the CPU accelerator runs every GPU thread as an OS thread).</summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void EveryDeviceMatchesOnnxRuntimeOnAShortSentence(string deviceName)
    {
        if (Fixture() is not string directory)
            return;
        var device = TestDevices.Get(deviceName);
        using var embedder = SentenceEmbedder.Load(device, directory);
        var tokens = embedder.Tokenize("A man is eating food.");
        var want = MiniLmFixture.OnnxRuntimeEmbeddings(directory, [tokens])[0];
        var got = embedder.EmbedTokens([tokens])[0];
        double cosine = got.Zip(want).Sum(p => p.First * p.Second);
        double difference = got.Zip(want).Max(p => Math.Abs(p.First - p.Second));
        Assert.True(cosine >= 0.999999 && difference <= 1e-5, $"{deviceName}: cosine {cosine:R}, max |diff| {difference:E2}");
    }

    /// <summary>
    /// Hugging Face's BERT tokenization, with ids looked up by hand in the model's vocab.txt: lower-casing, accent stripping,
    /// punctuation and CJK splitting, greedy longest-match word pieces with ## continuations, [UNK] only for a word no piece
    /// sequence covers. The package's own tokenizer differs on the second and third rows (it gives "caf [UNK]" and [UNK]);
    /// Microsoft.ML.Tokenizers' default BERT pre-tokenizer on the last four (it drops ☃, $, +, =, ^, ~, ©, €: see
    /// SentenceEmbedder's pre-tokenizer).
    /// </summary>
    [Theory]
    [InlineData("Hello, the quick brown fox!", new[] { 101, 7592, 1010, 1996, 4248, 2829, 4419, 999, 102 })]
    [InlineData("Café", new[] { 101, 7668, 102 })]
    [InlineData("v2", new[] { 101, 1058, 2475, 102 })]
    [InlineData("GPUs", new[] { 101, 14246, 2271, 102 })]
    [InlineData("東京", new[] { 101, 1879, 1755, 102 })]
    [InlineData("Naïve résumé (123)", new[] { 101, 15743, 13746, 1006, 13138, 1007, 102 })]
    [InlineData("a☃b", new[] { 101, 100, 102 })]
    [InlineData("$5 + 3 = 8", new[] { 101, 1002, 1019, 1009, 1017, 1027, 1022, 102 })]
    [InlineData("x^2 a~b", new[] { 101, 1060, 1034, 1016, 1037, 1066, 1038, 102 })]
    [InlineData("© €10", new[] { 101, 1075, 1574, 10790, 102 })]
    public void TokenizationFollowsHuggingFaceBertRules(string text, int[] ids)
    {
        if (Fixture() is not string directory)
            return;
        using var embedder = SentenceEmbedder.Load(TestDevices.Get("cpu"), directory);
        Assert.Equal(ids, embedder.Tokenize(text));
    }

    [Fact]
    public void LongTextsAreTruncatedToTheMaximumSequenceLength()
    {
        if (Fixture() is not string directory)
            return;
        using var embedder = SentenceEmbedder.Load(TestDevices.Get("cpu"), directory);
        var ids = embedder.Tokenize(string.Join(" ", Enumerable.Repeat("word", 1000)));
        Assert.Equal(256, embedder.MaxTokens);
        Assert.Equal(256, ids.Length);
        Assert.Equal(101, ids[0]);
        Assert.Equal(102, ids[^1]);
    }

    /// <summary>
    /// The model in bf16 (Linear weights and product operands rounded, fp32 accumulation; `embed --dtype bf16`): every
    /// text's embedding stays within cosine 0.99 of ONNX Runtime's fp32 one and is nearer to it than to any other text's,
    /// so a search over these embeddings finds the same neighbours.
    /// </summary>
    [Fact]
    public void Bf16EmbeddingsKeepEveryTextNearestToItsOwnFp32Embedding()
    {
        if (Fixture() is not string directory)
            return;
        using var embedder = SentenceEmbedder.Load(TestDevices.Get("cpu"), directory, DType.BF16);
        var tokens = Sentences.Select(embedder.Tokenize).ToArray();
        var want = MiniLmFixture.OnnxRuntimeEmbeddings(directory, tokens);
        var got = embedder.Embed(Sentences);
        for (int i = 0; i < Sentences.Length; i++)
        {
            var cosines = want.Select(w => got[i].Zip(w).Sum(p => p.First * p.Second)).ToArray();
            Assert.True(cosines[i] >= 0.99, $"text {i}: cosine {cosines[i]}");
            for (int j = 0; j < Sentences.Length; j++)
            {
                if (j != i)
                    Assert.True(cosines[i] > cosines[j], $"text {i} is nearer to text {j} ({cosines[j]}) than to itself ({cosines[i]})");
            }
        }
    }

    /// <summary>
    /// The double-precision BERT composition the benchmark case checks against (ReferenceOps.Bert) gives ONNX Runtime's
    /// sentence embedding on the real model: the reference is right about the model, not only about our ops.
    /// </summary>
    [Fact]
    public void ReferenceCompositionMatchesOnnxRuntime()
    {
        if (Fixture() is not string directory)
            return;
        int[] tokens = [101, 1996, 4248, 2829, 4419, 14523, 2058, 102];
        var config = BertConfig.Load(Path.Combine(directory, "config.json"));
        var weights = Weights.SafeTensors.Read(Path.Combine(directory, "model.safetensors"))
            .ToDictionary(t => t.Key.StartsWith("bert.", StringComparison.Ordinal) ? t.Key[5..] : t.Key, t => t.Value.Data);
        var hidden = ReferenceOps.Bert(tokens, weights, config.HiddenSize, config.Heads, config.IntermediateSize, config.Layers, config.LayerNormEpsilon);
        var pooled = new double[config.HiddenSize];
        for (int t = 0; t < tokens.Length; t++)
        for (int c = 0; c < pooled.Length; c++)
            pooled[c] += hidden[t * pooled.Length + c];
        double norm = Math.Sqrt(pooled.Sum(x => x * x));
        var want = MiniLmFixture.OnnxRuntimeEmbeddings(directory, [tokens])[0];
        double cosine = pooled.Zip(want, (a, b) => a * b).Sum() / norm;
        Assert.True(cosine >= 0.999999, $"cosine {cosine}");
        Assert.True(pooled.Zip(want, (a, b) => Math.Abs(a / norm - b)).Max() <= 1e-5);
    }

    /// <summary>The padded API returns the packed states at each sequence's real positions, and its first state on padding rows.</summary>
    [Fact]
    public void PaddedForwardHoldsThePackedStates()
    {
        if (Fixture() is not string directory)
            return;
        using var model = BertModel.Load(TestDevices.Get("cpu"), directory);
        int[][] sequences = [[101, 7592, 102], [101, 1996, 4248, 2829, 4419, 102]];
        var (packed, packing) = model.ForwardPacked(sequences);
        using (packed)
        using (var padded = model.Forward([[101, 7592, 102, 0, 0, 0], sequences[1]], [3, 6]))
        {
            var (p, q) = (packed.ToArray(), padded.ToArray());
            int width = model.Config.HiddenSize;
            for (int b = 0; b < 2; b++)
            for (int t = 0; t < 6; t++)
            {
                int from = packing.Offsets[b] + (t < packing.Lengths[b] ? t : 0);
                Assert.Equal(p.AsSpan(from * width, width).ToArray(), q.AsSpan((b * 6 + t) * width, width).ToArray());
            }
        }
    }

    /// <summary>Broken folders are errors naming what is wrong.</summary>
    [Fact]
    public void AMissingTensorOrAnotherArchitectureIsAnErrorNamingIt()
    {
        if (Fixture() is not string directory)
            return;
        string folder = System.IO.Directory.CreateTempSubdirectory("bert-tests").FullName;
        try
        {
            var tensors = new Dictionary<string, Weights.HostTensor>(Weights.SafeTensors.Read(Path.Combine(directory, "model.safetensors")));
            tensors.Remove("encoder.layer.3.attention.self.key.weight");
            Weights.SafeTensors.Write(Path.Combine(folder, "model.safetensors"), tensors);
            File.Copy(Path.Combine(directory, "config.json"), Path.Combine(folder, "config.json"));
            var missing = Assert.Throws<InvalidDataException>(() => BertModel.Load(TestDevices.Get("cpu"), folder).Dispose());
            Assert.Contains("encoder.layer.3.attention.self.key.weight", missing.Message);

            File.WriteAllText(Path.Combine(folder, "config.json"),
                File.ReadAllText(Path.Combine(directory, "config.json")).Replace("\"bert\"", "\"roberta\""));
            var architecture = Assert.Throws<InvalidDataException>(() => BertModel.Load(TestDevices.Get("cpu"), folder).Dispose());
            Assert.Contains("roberta", architecture.Message);
        }
        finally
        {
            System.IO.Directory.Delete(folder, recursive: true);
        }
    }
}
