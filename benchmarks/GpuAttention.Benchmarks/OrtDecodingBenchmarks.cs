using BenchmarkDotNet.Attributes;
using GpuAttention.Model;
using GpuAttention.Reference;
using GpuAttention.Weights;
using Microsoft.ML.OnnxRuntime;

namespace GpuAttention.Benchmarks;

/// <summary>
/// Greedy decoding of <c>samples/reverse-digits</c>: ORT runs the encoder once, then the decoder over bos + the tokens so
/// far each step (no cache, like ours without one); ours also with its per-layer key/value cache.
/// </summary>
public class OrtDecodingBenchmarks : OrtComparison
{
    private const string SampleInput = "31415926";

    private Transformer sample = null!;
    private TransformerConfig config = null!;
    private int[] source = [];
    private InferenceSession decoderSession = null!;
    private OrtIoBinding[] decoderBindings = [];
    private long[][] targetPrefixes = [];
    private float[][] stepLogits = [];
    private int[] emitted = [];

    /// <summary>The sample emits the 8 digits reversed, then eos.</summary>
    public static IEnumerable<OrtWorkload> Workloads => [OrtWorkload.Decode(SampleInput.Length + 1)];

    [ParamsSource(nameof(Workloads))]
    public OrtWorkload Workload { get; set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "samples", "reverse-digits");
        sample = Own(Transformer.Load(Device, folder));
        config = sample.Config;
        source = SampleInput.Select(ch => ch - '0' + 3).ToArray();
        var expected = source.Reverse().Append(config.EosId).ToArray();
        if (expected.Length != Workload.Size)
            throw new InvalidOperationException($"The sample emits {expected.Length} tokens, the workload counts {Workload.Size}.");

        var tensors = SafeTensors.Read(Path.Combine(folder, "model.safetensors"));
        float[] positions = SinusoidalPositions(config.MaxLength, config.DModel);
        string[] graphs = WriteWeights("reverse_digits", ["reverse_digits_encoder.onnx", "reverse_digits_decoder.onnx"],
            name => name == "positional_encoding" ? positions : tensors[name].Data);
        var encoderSession = OpenSession(graphs[0]);
        decoderSession = OpenSession(graphs[1]);

        int d = config.DModel, vocab = config.TargetVocabulary, steps = Workload.Size;
        var memory = Tensor(new float[source.Length * d], 1, source.Length, d);
        Binding = Bind(encoderSession, [("source", Tensor(source.Select(t => (long)t).ToArray(), 1, source.Length))], [("memory", memory)]);
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
        int count = OnnxRuntime();
        if (!emitted.AsSpan(0, count).SequenceEqual(expected))
            throw new InvalidOperationException($"ONNX Runtime decoded [{string.Join(", ", emitted.Take(count))}], expected [{string.Join(", ", expected)}].");
        foreach (bool cache in new[] { false, true })
        {
            var ours = Generation.Greedy(sample, [source], [source.Length], steps, cache)[0];
            if (!ours.SequenceEqual(expected))
                throw new InvalidOperationException($"We decoded [{string.Join(", ", ours)}], expected [{string.Join(", ", expected)}] (cache: {cache}).");
        }
        using var ourMemory = sample.Encode([source], [source.Length]);
        encoderSession.RunWithBinding(RunOptions, Binding);
        Verify.Close(ourMemory.ToArray(), memory.GetTensorDataAsSpan<float>(), "Our reverse-digits encoder memory vs ONNX Runtime");
        int[] target = [config.BosId, .. expected[..^1]];
        for (int i = 0; i < steps; i++)
            targetPrefixes[steps][i] = target[i];
        decoderSession.RunWithBinding(RunOptions, decoderBindings[steps]);
        using var ourDecoded = sample.Decode([target], ourMemory, [source.Length]);
        using var ourLogits = sample.Logits(ourDecoded);
        Verify.Close(ourLogits.ToArray(), stepLogits[steps], "Our reverse-digits decoder logits (teacher forcing) vs ONNX Runtime");
    }

    /// <summary>Greedy decoding with ORT: encoder once, then the decoder over bos + the tokens so far, argmax of the last row.</summary>
    protected override int RunOnnxRuntime()
    {
        Session.RunWithBinding(RunOptions, Binding);
        int vocab = config.TargetVocabulary, steps = Workload.Size;
        for (int step = 0; step < steps; step++)
        {
            int length = step + 1;
            long[] prefix = targetPrefixes[length];
            prefix[0] = config.BosId;
            for (int i = 1; i < length; i++)
                prefix[i] = emitted[i - 1];
            decoderSession.RunWithBinding(RunOptions, decoderBindings[length]);
            int next = Generation.ArgMax(stepLogits[length].AsSpan(step * vocab, vocab));
            emitted[step] = next;
            if (next == config.EosId)
                return length;
        }
        return steps;
    }

    /// <summary>Our greedy decoding re-running the decoder over the whole prefix each step, as ORT does here.</summary>
    [Benchmark]
    public int Ours() => Generation.Greedy(sample, [source], [source.Length], Workload.Size, useCache: false)[0].Length;

    /// <summary>Our greedy decoding with the per-layer key/value cache.</summary>
    [Benchmark]
    public int OursKvCache() => Generation.Greedy(sample, [source], [source.Length], Workload.Size, useCache: true)[0].Length;

    /// <summary>The positional table the ORT graphs take as a weight, from the reference formula.</summary>
    private static float[] SinusoidalPositions(int maxLength, int width)
    {
        var pe = new float[maxLength * width];
        for (int position = 0; position < maxLength; position++)
            for (int column = 0; column < width; column++)
                pe[position * width + column] = (float)ReferenceOps.PositionalEncoding(position, column, width);
        return pe;
    }
}
