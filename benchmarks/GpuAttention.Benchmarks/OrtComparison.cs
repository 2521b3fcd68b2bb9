using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using GpuAttention.Cases;
using GpuAttention.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace GpuAttention.Benchmarks;

/// <summary>
/// ONNX Runtime (NuGet Microsoft.ML.OnnxRuntime, CPU execution provider) beside our library on
/// <c>ComputeDevice.Create(DeviceKind.ManagedCpu)</c>, in one run and on the same inputs; one subclass per workload
/// (<see cref="OrtMatMulBenchmarks"/>, <see cref="OrtAttentionBenchmarks"/>, <see cref="OrtEncoderLayerBenchmarks"/>,
/// <see cref="OrtDecodingBenchmarks"/>). ORT is the baseline of each row group, so <c>Ratio</c> = t_ours / t_ORT and
/// <c>Speed vs ORT</c> = t_ORT / t_ours (above 1: we are faster).
/// </summary>
/// <remarks>
/// <para>The graphs are <c>benchmarks/onnx/*.onnx</c>, built by <c>benchmarks/onnx/make_graphs.py</c> (see there for the
/// choice of ORT ops). Model weights are constant initializers with external data: the setup writes the very arrays our
/// library uploads into <c>&lt;set&gt;.weights.bin</c> beside a copy of the graph (in a temporary folder), so ORT may
/// constant-fold and pre-pack them as for any exported model. <c>SessionOptions.AddInitializer</c> cannot supply weights
/// that the graph declares as inputs: ORT 1.31.1 ignores it for such names and the run fails with "Missing Input".</para>
/// <para>ORT: <c>GraphOptimizationLevel.ORT_ENABLE_ALL</c>, default intra-op threads (one per physical core), sessions,
/// OrtValues and <see cref="OrtIoBinding"/>s made in the setup; only <c>RunWithBinding</c> is timed, on preallocated
/// outputs. Ours: operands uploaded in the setup; the timed call ends with <c>device.Synchronize()</c>.</para>
/// <para>No wrong code is timed: each setup runs both once and throws unless they agree (<see cref="Verify.Close"/>, 1e-3
/// relative to max(1, |ORT|)). Sizes are the full ones whatever the device, except a tiny set under
/// <c>GPUATTENTION_BENCH_SIZES=small</c> (a smoke test).</para>
/// </remarks>
[Config(typeof(OrtConfig))]
public abstract class OrtComparison
{
    private static readonly Lazy<ComputeDevice> OursDevice = new(() => ComputeDevice.Create(DeviceKind.ManagedCpu));
    private readonly List<IDisposable> disposables = [];
    private string? weightsFolder;

    /// <summary>What runs a method of these classes: ORT's CPU provider or our managed CPU device.</summary>
    public static string Engine(string method) => method == nameof(OnnxRuntime)
        ? $"ONNX Runtime {OrtEnv.Instance().GetVersionString()} CPU EP"
        : OursDevice.Value.ToString();

    /// <summary>True under <c>GPUATTENTION_BENCH_SIZES=small</c>.</summary>
    protected static bool Small => Environment.GetEnvironmentVariable(DeviceProvider.SizesVariable)?.Trim().ToLowerInvariant() == "small";

    protected static ComputeDevice Device => OursDevice.Value;

    /// <summary>The session the baseline runs (the encoder's, when decoding).</summary>
    protected InferenceSession Session { get; private set; } = null!;

    /// <summary>What <see cref="Session"/> runs on.</summary>
    protected OrtIoBinding Binding { get; set; } = null!;

    protected RunOptions RunOptions { get; } = new();

    /// <summary>ONNX Runtime's run of the workload, the baseline of every row group.</summary>
    [Benchmark(Baseline = true)]
    public int OnnxRuntime() => RunOnnxRuntime();

    /// <summary>One run of <see cref="Session"/>; the decoding workload runs its whole loop.</summary>
    protected virtual int RunOnnxRuntime()
    {
        Session.RunWithBinding(RunOptions, Binding);
        return 0;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        for (int i = disposables.Count - 1; i >= 0; i--)
            disposables[i].Dispose();
        disposables.Clear();
        RunOptions.Dispose();
        if (weightsFolder is not null && Directory.Exists(weightsFolder))
            Directory.Delete(weightsFolder, recursive: true);
    }

    protected T Own<T>(T disposable) where T : IDisposable
    {
        disposables.Add(disposable);
        return disposable;
    }

    protected static string GraphPath(string file) => Path.Combine(AppContext.BaseDirectory, "onnx", file);

    /// <summary>Opens <paramref name="file"/> (a graph under <c>onnx/</c>, or a full path); the first one opened is <see cref="Session"/>.</summary>
    protected InferenceSession OpenSession(string file)
    {
        string path = Path.IsPathRooted(file) ? file : GraphPath(file);
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        var session = Own(new InferenceSession(path, options));
        Session ??= session;
        return session;
    }

    /// <summary>An OrtValue over <paramref name="data"/> (pinned, not copied: ORT reads and writes the array itself).</summary>
    protected OrtValue Tensor<T>(T[] data, params long[] shape) where T : unmanaged =>
        Own(OrtValue.CreateTensorValueFromMemory(data, shape));

    protected OrtIoBinding Bind(InferenceSession on, (string Name, OrtValue Value)[] inputs, (string Name, OrtValue Value)[] outputs)
    {
        var bound = Own(on.CreateIoBinding());
        foreach (var (name, value) in inputs)
            bound.BindInput(name, value);
        foreach (var (name, value) in outputs)
            bound.BindOutput(name, value);
        return bound;
    }

    /// <summary>
    /// Copies <paramref name="graphs"/> into a new temporary folder and writes beside them the external data file of
    /// weight set <paramref name="set"/> (<c>onnx/&lt;set&gt;.weights.json</c> lists its tensors, shapes and offsets), each
    /// tensor from <paramref name="tensor"/>. Returns the copied graphs' paths.
    /// </summary>
    protected string[] WriteWeights(string set, string[] graphs, Func<string, float[]> tensor)
    {
        var manifest = JsonSerializer.Deserialize<WeightsManifest>(File.ReadAllText(GraphPath(set + ".weights.json")))
            ?? throw new InvalidDataException($"{set}.weights.json is empty.");
        weightsFolder = Path.Combine(Path.GetTempPath(), "GpuAttention.Benchmarks.ort", $"{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(weightsFolder);
        using (var file = File.Create(Path.Combine(weightsFolder, manifest.File)))
        {
            foreach (var entry in manifest.Tensors)
            {
                float[] data = tensor(entry.Name);
                long expected = entry.Shape.Aggregate(1L, (x, y) => x * y);
                if (data.Length != expected)
                    throw new InvalidDataException($"Weight '{entry.Name}' has {data.Length} values, the graph expects [{string.Join(", ", entry.Shape)}].");
                if (file.Position != entry.Offset)
                    throw new InvalidDataException($"Weight '{entry.Name}' is listed at offset {entry.Offset}, but would be written at {file.Position}.");
                file.Write(MemoryMarshal.AsBytes(data.AsSpan()));
            }
            if (file.Position != manifest.Bytes)
                throw new InvalidDataException($"{manifest.File}: wrote {file.Position} bytes, the manifest says {manifest.Bytes}.");
        }
        return graphs.Select(g =>
        {
            string copy = Path.Combine(weightsFolder, g);
            File.Copy(GraphPath(g), copy);
            return copy;
        }).ToArray();
    }

    private sealed record WeightsManifest(
        [property: JsonPropertyName("file")] string File,
        [property: JsonPropertyName("bytes")] long Bytes,
        [property: JsonPropertyName("tensors")] WeightsEntry[] Tensors);

    private sealed record WeightsEntry(
        [property: JsonPropertyName("name")] string Name,
        [property: JsonPropertyName("shape")] long[] Shape,
        [property: JsonPropertyName("offset")] long Offset);
}

/// <summary>The columns of the ORT comparisons: GFLOP/s (or tokens/s when decoding), and speed against ORT.</summary>
public sealed class OrtConfig : ManualConfig
{
    public OrtConfig()
    {
        AddColumn(new WorkRateColumn());
        AddColumn(new SpeedVsBaselineColumn());
    }

    private static double? MeanNs(Summary summary, BenchmarkCase benchmarkCase) =>
        summary[benchmarkCase]?.ResultStatistics?.Mean is > 0 and var mean ? mean : null;

    /// <summary>The workload's FLOPs (<see cref="OrtWorkload.Flops"/>) or decoded tokens over the mean time.</summary>
    private sealed class WorkRateColumn() : CustomColumn("Throughput",
        "Matmul 2·N³; attention 4·B·H·L²·d, halved when causal (the useful products); encoder layer 2·L·d·4d + 4·L²·d + 4·L·d·d_ff (GFLOP/s); decoding: generated tokens (8 digits + eos) per second, encoder included")
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            IChartable workload = benchmarkCase.Param<OrtWorkload>("Workload");
            return MeanNs(summary, benchmarkCase) is { } mean ? Throughput.Format(workload.Work, workload.Unit, mean * 1e-9) : "NA";
        }
    }

    /// <summary>t_ORT / t_this: above 1, faster than ONNX Runtime on the same workload.</summary>
    private sealed class SpeedVsBaselineColumn() : CustomColumn("Speed vs ORT", "ONNX Runtime's mean time / this mean time on the same workload (> 1: faster than ORT)")
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var baseline = summary.GetBaseline(summary.GetLogicalGroupKey(benchmarkCase));
            if (baseline is null || MeanNs(summary, baseline) is not { } reference || MeanNs(summary, benchmarkCase) is not { } mean)
                return "NA";
            return (reference / mean).ToString("0.00", style.CultureInfo) + "x";
        }
    }
}

public enum OrtWorkloadKind
{
    MatMul,
    Attention,
    EncoderLayer,
    Decode,
    SentenceEmbedding,
}

/// <summary>
/// One workload of the ONNX Runtime comparisons: <see cref="Size"/> is N (matmul), L (attention, encoder layer) or the
/// tokens decoded (decoding).
/// </summary>
public sealed record OrtWorkload(OrtWorkloadKind Kind, int Size, bool Causal = false, int DModel = 0, int Heads = 0, int DFeedForward = 0,
    int Batch = 1, bool Padded = false)
    : IComparable, IChartable
{
    public const int AttentionHeads = 8, AttentionHeadDim = 64;

    public static OrtWorkload MatMul(int n) => new(OrtWorkloadKind.MatMul, n);

    /// <summary>Batch 1, 8 heads of 64: ours [1, 8, L, 64], ORT [1, L, 512].</summary>
    public static OrtWorkload Attention(int length, bool causal) => new(OrtWorkloadKind.Attention, length, causal);

    public static OrtWorkload EncoderLayer(int dModel, int heads, int dFeedForward, int length) =>
        new(OrtWorkloadKind.EncoderLayer, length, false, dModel, heads, dFeedForward);

    public static OrtWorkload Decode(int tokens) => new(OrtWorkloadKind.Decode, tokens);

    /// <summary>Sentence embeddings of <paramref name="batch"/> texts of up to <paramref name="length"/> tokens (lengths spread 16…length when padded).</summary>
    public static OrtWorkload SentenceEmbedding(int batch, int length, bool padded) =>
        new(OrtWorkloadKind.SentenceEmbedding, length, Batch: batch, Padded: padded);

    /// <summary>Counted FLOPs (multiply and add each one), or null for decoding.</summary>
    public double? Flops => Kind switch
    {
        OrtWorkloadKind.MatMul => 2.0 * Size * Size * Size,
        OrtWorkloadKind.Attention => 4.0 * AttentionHeads * Size * Size * AttentionHeadDim / (Causal ? 2 : 1),
        OrtWorkloadKind.EncoderLayer => 2.0 * Size * DModel * 4 * DModel + 4.0 * Size * Size * DModel + 4.0 * Size * DModel * DFeedForward,
        _ => null,
    };

    string IChartable.Family => "vs ONNX Runtime: " + Kind switch
    {
        OrtWorkloadKind.MatMul => "matmul",
        OrtWorkloadKind.Attention => "attention",
        OrtWorkloadKind.EncoderLayer => "encoder layer",
        OrtWorkloadKind.SentenceEmbedding => "sentence embeddings",
        _ => "decoding",
    };

    string IChartable.Series => Causal ? "causal" : Padded ? "padded" : "";

    double IChartable.Size => Size;

    string IChartable.SizeLabel => Kind switch { OrtWorkloadKind.MatMul => "N", OrtWorkloadKind.Decode => "tokens", _ => "L" };

    double IChartable.Work => Flops ?? (double)Batch * Size;

    WorkUnit IChartable.Unit => Kind is OrtWorkloadKind.Decode or OrtWorkloadKind.SentenceEmbedding ? WorkUnit.Tokens : WorkUnit.Flops;

    public int CompareTo(object? obj) => obj is OrtWorkload other
        ? (Kind, Size, Causal, DModel, Batch, Padded).CompareTo((other.Kind, other.Size, other.Causal, other.DModel, other.Batch, other.Padded))
        : 1;

    /// <summary>At most 20 characters, which BenchmarkDotNet shows without cutting: e.g. <c>attn L=4096 causal</c>.</summary>
    public override string ToString() => Kind switch
    {
        OrtWorkloadKind.MatMul => $"matmul N={Size}",
        OrtWorkloadKind.Attention => $"attn L={Size}{(Causal ? " causal" : "")}",
        OrtWorkloadKind.EncoderLayer => $"encoder d={DModel} L={Size}",
        OrtWorkloadKind.SentenceEmbedding => $"embed {Batch}x{Size}{(Padded ? " padded" : "")}",
        _ => $"decode {Size} tokens",
    };
}
