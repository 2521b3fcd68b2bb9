using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Filters;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using GpuAttention.Model;
using GpuAttention.Ops;
using GpuAttention.Runtime;
using GpuAttention.Weights;
using Microsoft.ML.OnnxRuntime;

namespace GpuAttention.Benchmarks;

/// <summary>
/// ONNX Runtime (NuGet Microsoft.ML.OnnxRuntime, CPU execution provider) beside our library on
/// <c>ComputeDevice.Create(DeviceKind.ManagedCpu)</c>, in one run and on the same inputs: square matmul, multi-head attention
/// (causal or not), one Transformer encoder layer, and greedy decoding of the reverse-digits sample. Each workload is
/// one value of <see cref="Workload"/>; ORT is the baseline of its row group, so <c>Ratio</c> = t_ours / t_ORT and
/// <c>Speed vs ORT</c> = t_ORT / t_ours (above 1: we are faster).
/// </summary>
/// <remarks>
/// <para>The graphs are <c>benchmarks/onnx/*.onnx</c>, built by <c>benchmarks/onnx/make_graphs.py</c> (see there for the
/// choice of ORT ops). Attention is <c>com.microsoft.MultiHeadAttention</c>: the fastest ORT CPU attention we measured,
/// with an MLAS flash-attention path when unmasked; causal is its <c>unidirectional = 1</c>, which ORT runs unfused
/// (GEMM, masked softmax, GEMM over all L² scores). Its operands are [B, L, H·d] (heads interleaved per token), so the
/// setup hands ORT our [B, H, L, d] data transposed to that layout; the transposition is not timed.</para>
/// <para>Model weights are constant initializers with external data: the setup writes the very arrays our library
/// uploads into <c>&lt;set&gt;.weights.bin</c> beside a copy of the graph (in a temporary folder), so ORT may constant-fold
/// and pre-pack them as for any exported model. <c>SessionOptions.AddInitializer</c> cannot supply weights that
/// the graph declares as inputs: ORT 1.31.1 ignores it for such names and the run fails with "Missing Input".</para>
/// <para>ORT: <c>GraphOptimizationLevel.ORT_ENABLE_ALL</c>, default intra-op threads (one per physical core), sessions,
/// OrtValues and <see cref="OrtIoBinding"/>s made in the setup; only <c>RunWithBinding</c> is timed, on preallocated
/// outputs. Ours: operands uploaded in the setup; the timed call ends with <c>device.Synchronize()</c>.</para>
/// <para>No wrong code is timed: the setup runs both once and throws unless they agree (<see cref="Verify.Close(ReadOnlySpan{float}, ReadOnlySpan{float}, string)"/>,
/// 1e-3 relative to max(1, |ORT|)) and, for decoding, unless both emit the expected tokens.</para>
/// <para>Sizes are the full ones whatever <see cref="DeviceProvider.SmallSizes"/> says, except a tiny set under
/// <c>GPUATTENTION_BENCH_SIZES=small</c> (a smoke test).</para>
/// </remarks>
[Config(typeof(Config))]
public class OrtComparisonBenchmarks
{
    private const string SampleInput = "31415926";

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new GflopsColumn());
            AddColumn(new TokensPerSecondColumn());
            AddColumn(new SpeedVsBaselineColumn());
            // The key/value-cached decoding exists for the decoding workload only.
            AddFilter(new SimpleFilter(c => c.Descriptor.WorkloadMethod.Name != nameof(OursKvCache)
                || c.Param<OrtWorkload>(nameof(Workload)).Kind == OrtWorkloadKind.Decode));
        }
    }

    private static readonly Lazy<ComputeDevice> OursDevice = new(() => ComputeDevice.Create(DeviceKind.ManagedCpu));

    /// <summary>True when these are method names of this class (Program's Device column asks).</summary>
    public static bool IsMethod(string name) => name is nameof(OnnxRuntime) or nameof(Ours) or nameof(OursKvCache);

    /// <summary>What runs a method of this class: ORT's CPU provider or our CPU device.</summary>
    public static string Engine(string method) => method == nameof(OnnxRuntime)
        ? $"ONNX Runtime {OrtEnv.Instance().GetVersionString()} CPU EP"
        : $"{DeviceKind.ManagedCpu}: {OursDevice.Value.Name}";

    /// <summary>Full sizes, or a tiny set when <see cref="DeviceProvider.SizesVariable"/> is <c>small</c>.</summary>
    public static IEnumerable<OrtWorkload> Workloads
    {
        get
        {
            bool small = Environment.GetEnvironmentVariable(DeviceProvider.SizesVariable)?.Trim().ToLowerInvariant() == "small";
            foreach (int n in small ? [128] : new[] { 512, 1024, 2048 })
                yield return OrtWorkload.MatMul(n);
            foreach (int length in small ? [64] : new[] { 256, 1024, 4096 })
            {
                yield return OrtWorkload.Attention(length, causal: false);
                yield return OrtWorkload.Attention(length, causal: true);
            }
            yield return small ? OrtWorkload.EncoderLayer(64, 4, 256, 32) : OrtWorkload.EncoderLayer(512, 8, 2048, 256);
            yield return OrtWorkload.Decode(SampleInput.Length + 1);
        }
    }

    [ParamsSource(nameof(Workloads))]
    public OrtWorkload Workload { get; set; } = null!;

    private ComputeDevice device = null!;
    private readonly List<IDisposable> disposables = [];
    private string? weightsFolder;

    // ORT: one session and its binding (for decoding: the encoder's; the decoder has its own below).
    private InferenceSession session = null!;
    private OrtIoBinding binding = null!;
    private RunOptions runOptions = null!;

    // Ours: matmul a·b → c; attention q, k, v → o; the encoder layer's input x.
    private DeviceTensor a = null!, b = null!, c = null!, q = null!, k = null!, v = null!, o = null!, x = null!;
    private AttentionMask mask = AttentionMask.None;
    private EncoderLayer? encoderLayer;
    private Transformer? sample;

    // Decoding with ORT: the encoder runs once, then the decoder over the whole prefix of length T = 1, 2, … per step.
    private InferenceSession decoderSession = null!;
    private OrtIoBinding[] decoderBindings = [];
    private long[][] targetPrefixes = [];
    private float[][] stepLogits = [];
    private int[] source = [];
    private int[] emitted = [];
    private TransformerConfig sampleConfig = null!;

    [GlobalSetup]
    public void Setup()
    {
        device = OursDevice.Value;
        runOptions = Own(new RunOptions());
        switch (Workload.Kind)
        {
            case OrtWorkloadKind.MatMul: SetupMatMul(); break;
            case OrtWorkloadKind.Attention: SetupAttention(); break;
            case OrtWorkloadKind.EncoderLayer: SetupEncoderLayer(); break;
            case OrtWorkloadKind.Decode: SetupDecode(); break;
        }
    }

    [Benchmark(Baseline = true)]
    public int OnnxRuntime()
    {
        if (Workload.Kind == OrtWorkloadKind.Decode)
            return DecodeWithOrt();
        session.RunWithBinding(runOptions, binding);
        return 0;
    }

    [Benchmark]
    public int Ours()
    {
        switch (Workload.Kind)
        {
            case OrtWorkloadKind.MatMul:
                MatMul.Multiply(a, b, c);
                break;
            case OrtWorkloadKind.Attention:
                Attention.Fused(q, k, v, o, mask);
                break;
            case OrtWorkloadKind.EncoderLayer:
                using (encoderLayer!.Forward(x, AttentionMask.None))
                    device.Synchronize();
                return 0;
            case OrtWorkloadKind.Decode:
                return Generation.Greedy(sample!, [source], [source.Length], Workload.Size, useCache: false)[0].Length;
        }
        device.Synchronize();
        return 0;
    }

    /// <summary>Our greedy decoding with the per-layer key/value cache (decoding workload only).</summary>
    [Benchmark]
    public int OursKvCache() => Generation.Greedy(sample!, [source], [source.Length], Workload.Size, useCache: true)[0].Length;

    [GlobalCleanup]
    public void Cleanup()
    {
        for (int i = disposables.Count - 1; i >= 0; i--)
            disposables[i].Dispose();
        disposables.Clear();
        if (weightsFolder is not null && Directory.Exists(weightsFolder))
            Directory.Delete(weightsFolder, recursive: true);
    }

    // ---- matmul: C[N, N] = A·B ---------------------------------------------------------------------------------

    private void SetupMatMul()
    {
        int n = Workload.Size;
        float[] ha = Verify.RandomData(n * n, 1), hb = Verify.RandomData(n * n, 2), hc = new float[n * n];
        a = Own(device.Upload(ha, n, n));
        b = Own(device.Upload(hb, n, n));
        c = Own(device.Allocate(n, n));

        session = Session("matmul.onnx");
        binding = Bind(session, [("A", Tensor(ha, n, n)), ("B", Tensor(hb, n, n))], [("C", Tensor(hc, n, n))]);

        OnnxRuntime();
        Ours();
        Verify.Close(c.ToArray(), hc, $"Our matmul {n}³ vs ONNX Runtime");
    }

    // ---- attention: O = softmax(Q·Kᵀ/√d [+ causal])·V, ours [1, H, L, d], ORT's MultiHeadAttention [1, L, H·d] ---

    private void SetupAttention()
    {
        const int heads = OrtWorkload.AttentionHeads, headDim = OrtWorkload.AttentionHeadDim;
        int length = Workload.Size, count = heads * length * headDim;
        float[] hq = Verify.RandomData(count, 1), hk = Verify.RandomData(count, 2), hv = Verify.RandomData(count, 3);
        mask = Workload.Causal ? AttentionMask.Causal : AttentionMask.None;
        q = Own(device.Upload(hq, 1, heads, length, headDim));
        k = Own(device.Upload(hk, 1, heads, length, headDim));
        v = Own(device.Upload(hv, 1, heads, length, headDim));
        o = Own(device.Allocate(1, heads, length, headDim));

        long[] shape = [1, length, heads * headDim];
        var ortOutput = new float[count];
        session = Session(Workload.Causal ? "attention_causal.onnx" : "attention.onnx");
        binding = Bind(session,
            [("query", Tensor(TokenMajor(hq, heads, length, headDim), shape)),
             ("key", Tensor(TokenMajor(hk, heads, length, headDim), shape)),
             ("value", Tensor(TokenMajor(hv, heads, length, headDim), shape))],
            [("output", Tensor(ortOutput, shape))]);

        OnnxRuntime();
        Ours();
        Verify.Close(o.ToArray(), HeadMajor(ortOutput, heads, length, headDim), $"Our fused attention {Workload} vs ONNX Runtime");
    }

    /// <summary>[H, L, d] → [L, H·d].</summary>
    private static float[] TokenMajor(float[] x, int heads, int length, int headDim)
    {
        var y = new float[x.Length];
        for (int h = 0; h < heads; h++)
            for (int l = 0; l < length; l++)
                Array.Copy(x, (h * length + l) * headDim, y, (l * heads + h) * headDim, headDim);
        return y;
    }

    /// <summary>[L, H·d] → [H, L, d].</summary>
    private static float[] HeadMajor(float[] x, int heads, int length, int headDim)
    {
        var y = new float[x.Length];
        for (int h = 0; h < heads; h++)
            for (int l = 0; l < length; l++)
                Array.Copy(x, (l * heads + h) * headDim, y, (h * length + l) * headDim, headDim);
        return y;
    }

    // ---- one encoder layer (post-LN, ReLU), the same random weights for both -----------------------------------

    private void SetupEncoderLayer()
    {
        var (d, heads, ff, length) = (Workload.DModel, Workload.Heads, Workload.DFeedForward, Workload.Size);
        var tensors = ModelBenchmarks.RandomEncoderLayer(d, ff);
        var config = new TransformerConfig { DModel = d, Heads = heads, DFeedForward = ff, SourceVocabulary = 1, TargetVocabulary = 3 };
        encoderLayer = Own(EncoderLayer.Load(new WeightSource(device, tensors, "random"), "", config));
        float[] hx = Verify.RandomData(length * d, 1), hy = new float[length * d];
        x = Own(device.Upload(hx, 1, length, d));

        string set = $"encoder_layer_d{d}_h{heads}_ff{ff}";
        session = Session(WriteWeights(set, [set + ".onnx"], name => tensors[name].Data)[0]);
        binding = Bind(session, [("x", Tensor(hx, 1, length, d))], [("y", Tensor(hy, 1, length, d))]);

        OnnxRuntime();
        using var ours = encoderLayer.Forward(x, AttentionMask.None);
        Verify.Close(ours.ToArray(), hy, $"Our {Workload} vs ONNX Runtime");
    }

    // ---- greedy decoding of samples/reverse-digits -------------------------------------------------------------

    private void SetupDecode()
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "samples", "reverse-digits");
        sample = Own(Transformer.Load(device, folder));
        sampleConfig = sample.Config;
        source = SampleInput.Select(ch => ch - '0' + 3).ToArray();
        var expected = source.Reverse().Append(sampleConfig.EosId).ToArray();
        if (expected.Length != Workload.Size)
            throw new InvalidOperationException($"The sample emits {expected.Length} tokens, the workload counts {Workload.Size}.");

        var tensors = SafeTensors.Read(Path.Combine(folder, "model.safetensors"));
        float[] positions = SinusoidalPositions(sampleConfig.MaxLength, sampleConfig.DModel);
        string[] graphs = WriteWeights("reverse_digits", ["reverse_digits_encoder.onnx", "reverse_digits_decoder.onnx"],
            name => name == "positional_encoding" ? positions : tensors[name].Data);
        session = Session(graphs[0]);
        decoderSession = Session(graphs[1]);

        int d = sampleConfig.DModel, vocab = sampleConfig.TargetVocabulary, steps = Workload.Size;
        var memory = Tensor(new float[source.Length * d], 1, source.Length, d);
        binding = Bind(session, [("source", Tensor(source.Select(t => (long)t).ToArray(), 1, source.Length))], [("memory", memory)]);
        targetPrefixes = new long[steps + 1][];
        stepLogits = new float[steps + 1][];
        decoderBindings = new OrtIoBinding[steps + 1];
        for (int length = 1; length <= steps; length++)
        {
            targetPrefixes[length] = new long[length];
            stepLogits[length] = new float[length * vocab];
            decoderBindings[length] = Bind(decoderSession,
                [("target", Tensor(targetPrefixes[length], 1, length)), ("memory", memory)],
                [("logits", Tensor(stepLogits[length], 1, length, vocab))]);
        }
        emitted = new int[steps];

        // The same tokens from both, and the same memory and teacher-forced logits.
        int count = DecodeWithOrt();
        if (!emitted.AsSpan(0, count).SequenceEqual(expected))
            throw new InvalidOperationException($"ONNX Runtime decoded [{string.Join(", ", emitted.Take(count))}], expected [{string.Join(", ", expected)}].");
        foreach (bool cache in new[] { false, true })
        {
            var ours = Generation.Greedy(sample, [source], [source.Length], steps, cache)[0];
            if (!ours.SequenceEqual(expected))
                throw new InvalidOperationException($"We decoded [{string.Join(", ", ours)}], expected [{string.Join(", ", expected)}] (cache: {cache}).");
        }
        using var ourMemory = sample.Encode([source], [source.Length]);
        session.RunWithBinding(runOptions, binding);
        Verify.Close(ourMemory.ToArray(), memory.GetTensorDataAsSpan<float>(), "Our reverse-digits encoder memory vs ONNX Runtime");
        int[] target = [sampleConfig.BosId, .. expected[..^1]];
        for (int i = 0; i < steps; i++)
            targetPrefixes[steps][i] = target[i];
        decoderSession.RunWithBinding(runOptions, decoderBindings[steps]);
        using var ourDecoded = sample.Decode([target], ourMemory, [source.Length]);
        using var ourLogits = sample.Logits(ourDecoded);
        Verify.Close(ourLogits.ToArray(), stepLogits[steps], "Our reverse-digits decoder logits (teacher forcing) vs ONNX Runtime");
    }

    /// <summary>Greedy decoding with ORT: encoder once, then the decoder over bos + the tokens so far, argmax of the last row.</summary>
    private int DecodeWithOrt()
    {
        session.RunWithBinding(runOptions, binding);
        int vocab = sampleConfig.TargetVocabulary, steps = Workload.Size;
        for (int step = 0; step < steps; step++)
        {
            int length = step + 1;
            long[] prefix = targetPrefixes[length];
            prefix[0] = sampleConfig.BosId;
            for (int i = 1; i < length; i++)
                prefix[i] = emitted[i - 1];
            decoderSession.RunWithBinding(runOptions, decoderBindings[length]);
            int next = ArgMax(stepLogits[length].AsSpan(step * vocab, vocab));
            emitted[step] = next;
            if (next == sampleConfig.EosId)
                return length;
        }
        return steps;
    }

    private static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
                best = i;
        }
        return best;
    }

    /// <summary>PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(…), in double as our kernel computes it.</summary>
    private static float[] SinusoidalPositions(int maxLength, int width)
    {
        var pe = new float[maxLength * width];
        for (int pos = 0; pos < maxLength; pos++)
            for (int col = 0; col < width; col++)
            {
                double angle = pos * Math.Exp(-(col - col % 2) * Math.Log(10000.0) / width);
                pe[pos * width + col] = (float)(col % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle));
            }
        return pe;
    }

    // ---- ORT plumbing ------------------------------------------------------------------------------------------

    private T Own<T>(T disposable) where T : IDisposable
    {
        disposables.Add(disposable);
        return disposable;
    }

    private static string GraphPath(string file) => Path.Combine(AppContext.BaseDirectory, "onnx", file);

    private InferenceSession Session(string file)
    {
        string path = Path.IsPathRooted(file) ? file : GraphPath(file);
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        return Own(new InferenceSession(path, options));
    }

    /// <summary>An OrtValue over <paramref name="data"/> (pinned, not copied: ORT reads and writes the array itself).</summary>
    private OrtValue Tensor<T>(T[] data, params long[] shape) where T : unmanaged =>
        Own(OrtValue.CreateTensorValueFromMemory(data, shape));

    private OrtIoBinding Bind(InferenceSession on, (string Name, OrtValue Value)[] inputs, (string Name, OrtValue Value)[] outputs)
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
    private string[] WriteWeights(string set, string[] graphs, Func<string, float[]> tensor)
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

    // ---- columns -----------------------------------------------------------------------------------------------

    private static double? MeanNs(Summary summary, BenchmarkCase benchmarkCase) =>
        summary[benchmarkCase]?.ResultStatistics?.Mean is > 0 and var mean ? mean : null;

    /// <summary>FLOPs of the workload over the mean time (see <see cref="OrtWorkload.Flops"/>); "-" for decoding.</summary>
    private sealed class GflopsColumn() : CustomColumn("GFLOP/s",
        "Throughput: matmul 2·N³; attention 4·B·H·L²·d, halved when causal (the useful products); encoder layer 2·L·d·4d + 4·L²·d + 4·L·d·d_ff; per mean time, in 10^9 FLOP/s")
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            double? flops = benchmarkCase.Param<OrtWorkload>(nameof(Workload)).Flops;
            if (flops is null)
                return "-";
            if (MeanNs(summary, benchmarkCase) is not { } mean)
                return "NA";
            double rate = flops.Value / mean;
            return rate.ToString(rate >= 1 ? "N2" : "G3", style.CultureInfo);
        }
    }

    /// <summary>Generated tokens over the mean time of one greedy decoding (encoder included).</summary>
    private sealed class TokensPerSecondColumn() : CustomColumn("tokens/s", "Decoding: generated tokens (8 digits + eos) per second, encoder included")
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            var workload = benchmarkCase.Param<OrtWorkload>(nameof(Workload));
            if (workload.Kind != OrtWorkloadKind.Decode)
                return "-";
            return MeanNs(summary, benchmarkCase) is { } mean ? (workload.Size / (mean * 1e-9)).ToString("N2", style.CultureInfo) : "NA";
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
}

/// <summary>
/// One workload of <see cref="OrtComparisonBenchmarks"/>: <see cref="Size"/> is N (matmul), L (attention, encoder layer)
/// or the tokens decoded (decoding).
/// </summary>
public sealed record OrtWorkload(OrtWorkloadKind Kind, int Size, bool Causal = false, int DModel = 0, int Heads = 0, int DFeedForward = 0)
    : IComparable
{
    public const int AttentionHeads = 8, AttentionHeadDim = 64;

    public static OrtWorkload MatMul(int n) => new(OrtWorkloadKind.MatMul, n);

    /// <summary>Batch 1, 8 heads of 64: ours [1, 8, L, 64], ORT [1, L, 512].</summary>
    public static OrtWorkload Attention(int length, bool causal) => new(OrtWorkloadKind.Attention, length, causal);

    public static OrtWorkload EncoderLayer(int dModel, int heads, int dFeedForward, int length) =>
        new(OrtWorkloadKind.EncoderLayer, length, false, dModel, heads, dFeedForward);

    public static OrtWorkload Decode(int tokens) => new(OrtWorkloadKind.Decode, tokens);

    /// <summary>Counted FLOPs (multiply and add each one), or null for decoding.</summary>
    public double? Flops => Kind switch
    {
        OrtWorkloadKind.MatMul => 2.0 * Size * Size * Size,
        OrtWorkloadKind.Attention => 4.0 * AttentionHeads * Size * Size * AttentionHeadDim / (Causal ? 2 : 1),
        OrtWorkloadKind.EncoderLayer => 2.0 * Size * DModel * 4 * DModel + 4.0 * Size * Size * DModel + 4.0 * Size * DModel * DFeedForward,
        _ => null,
    };

    public int CompareTo(object? obj) => obj is OrtWorkload other
        ? (Kind, Size, Causal, DModel).CompareTo((other.Kind, other.Size, other.Causal, other.DModel))
        : 1;

    /// <summary>At most 20 characters, which BenchmarkDotNet shows without cutting: e.g. <c>attn L=4096 causal</c>.</summary>
    public override string ToString() => Kind switch
    {
        OrtWorkloadKind.MatMul => $"matmul N={Size}",
        OrtWorkloadKind.Attention => $"attn L={Size}{(Causal ? " causal" : "")}",
        OrtWorkloadKind.EncoderLayer => $"encoder d={DModel} L={Size}",
        _ => $"decode {Size} tokens",
    };
}
