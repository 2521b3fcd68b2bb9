using BenchmarkDotNet.Attributes;
using GpuAttention.Model;

namespace GpuAttention.Benchmarks;

/// <summary>
/// Sentence embeddings with the real all-MiniLM-L6-v2 (GPUATTENTION_MINILM, from tools/minilm/provide-minilm.sh): ONNX
/// Runtime running the package's own ONNX file (to its last hidden state, padded) beside our <see cref="SentenceEmbedder"/>
/// on the same token ids (packed without padding, then mean pooled and normalised). One 16-token text; 32 texts padded to 128 with lengths
/// spread 16…128; 32 texts of 128.
/// </summary>
public class OrtSentenceEmbeddingBenchmarks : OrtComparison
{
    private SentenceEmbedder embedder = null!;
    private int[][] tokens = null!;

    public static IEnumerable<OrtWorkload> Workloads => Small
        ? [OrtWorkload.SentenceEmbedding(1, 16, padded: false)]
        : [OrtWorkload.SentenceEmbedding(1, 16, padded: false), OrtWorkload.SentenceEmbedding(32, 128, padded: true), OrtWorkload.SentenceEmbedding(32, 128, padded: false)];

    [ParamsSource(nameof(Workloads))]
    public OrtWorkload Workload { get; set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        string directory = Environment.GetEnvironmentVariable("GPUATTENTION_MINILM") is { Length: > 0 } path && Directory.Exists(path)
            ? path
            : throw new InvalidOperationException("GPUATTENTION_MINILM names no model folder: run tools/minilm/provide-minilm.sh.");
        embedder = Own(SentenceEmbedder.Load(Device, directory));
        int batch = Workload.Batch, length = Workload.Size;
        var random = new Random(7);
        tokens = [.. Enumerable.Range(0, batch).Select(b =>
        {
            int count = Workload.Padded && batch > 1 ? 16 + (length - 16) * b / (batch - 1) : length;
            return Enumerable.Range(0, count).Select(t => t == 0 ? 101 : t == count - 1 ? 102 : random.Next(1996, 29000)).ToArray();
        })];

        long[] ids = new long[batch * length], mask = new long[batch * length], types = new long[batch * length];
        for (int b = 0; b < batch; b++)
        for (int t = 0; t < tokens[b].Length; t++)
            (ids[b * length + t], mask[b * length + t]) = (tokens[b][t], 1);
        var hidden = new float[batch * length * embedder.Dimension];
        var session = OpenSession(Path.Combine(directory, "model.onnx"));
        string hiddenName = session.OutputMetadata.First(o => o.Value.Dimensions.Length == 3).Key;
        Binding = Bind(session,
            [("input_ids", Tensor(ids, batch, length)), ("attention_mask", Tensor(mask, batch, length)), ("token_type_ids", Tensor(types, batch, length))],
            [(hiddenName, Tensor(hidden, batch, length, embedder.Dimension))]);
        OnnxRuntime();
        // The real tokens' states (ours are packed; ORT's padding rows are its own and not compared).
        var (ours, packing) = embedder.Model.ForwardPacked(tokens);
        using (ours)
        {
            int width = embedder.Dimension;
            var expected = tokens.SelectMany((t, b) => hidden.AsSpan(b * length * width, t.Length * width).ToArray()).ToArray();
            Verify.Close(ours.ToArray(), expected, $"Our {Workload} vs ONNX Runtime");
        }
    }

    [Benchmark]
    public int Ours() => embedder.EmbedTokens(tokens).Length;
}
