using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using GpuAttention.Model;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;
using GpuAttention.Weights;

namespace GpuAttention.Benchmarks;

/// <summary>
/// The model layer: one encoder layer forward (random weights; the paper's base sizes on a GPU), and greedy
/// decoding of the reverse-digits sample with and without the key/value cache.
/// </summary>
[Config(typeof(Config))]
public class ModelBenchmarks
{
    private const string SampleInput = "31415926";

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(RateColumn.Gflops(c => c.Descriptor.WorkloadMethod.Name == nameof(EncoderLayerForward) ? EncoderLayerFlops() : 0,
                "2·L·d·4d (projections) + 4·L²·d (attention) + 4·L·d·d_ff (feed-forward), encoder layer only"));
            AddColumn(new TokensPerSecondColumn());
        }
    }

    private ComputeDevice device = null!;
    private EncoderLayer? encoderLayer;
    private DeviceTensor? input;
    private Transformer? sample;
    private int[] source = [];

    /// <summary>(d_model, heads, d_ff, length): the paper's base layer at 256 tokens on a GPU, a small one on the CPU accelerator.</summary>
    public static (int DModel, int Heads, int DFeedForward, int Length) EncoderShape =>
        DeviceProvider.SmallSizes ? (64, 4, 256, 32) : (512, 8, 2048, 256);

    /// <summary>Tokens the sample emits for <see cref="SampleInput"/>: its 8 digits reversed, then eos.</summary>
    public static int GeneratedTokens => SampleInput.Length + 1;

    private static double EncoderLayerFlops()
    {
        var (d, _, ff, l) = EncoderShape;
        return 2.0 * l * d * 4 * d + 4.0 * l * l * d + 4.0 * l * d * ff;
    }

    [GlobalSetup(Target = nameof(EncoderLayerForward))]
    public void SetupEncoderLayer()
    {
        device = DeviceProvider.Device;
        var (d, heads, ff, length) = EncoderShape;
        var config = new TransformerConfig { DModel = d, Heads = heads, DFeedForward = ff, SourceVocabulary = 1, TargetVocabulary = 3 };
        encoderLayer = EncoderLayer.Load(new WeightSource(device, RandomEncoderLayer(d, ff), "random"), "", config);
        input = device.Upload(RandomData.Uniform(length * d, 1), 1, length, d);
        EncoderLayerForward();
    }

    [GlobalSetup(Targets = [nameof(DecodeWithCache), nameof(DecodeWithoutCache)])]
    public void SetupDecoding()
    {
        device = DeviceProvider.Device;
        sample = Transformer.Load(device, Path.Combine(AppContext.BaseDirectory, "samples", "reverse-digits"));
        source = SampleInput.Select(c => c - '0' + 3).ToArray();
        var expected = source.Reverse().Append(sample.Config.EosId).ToArray();
        foreach (bool cache in new[] { true, false })
        {
            var got = Generation.Greedy(sample, [source], [source.Length], GeneratedTokens, cache)[0];
            if (!got.SequenceEqual(expected))
                throw new InvalidOperationException($"The sample decoded [{string.Join(", ", got)}], expected [{string.Join(", ", expected)}] (cache: {cache}).");
        }
    }

    [Benchmark]
    public void EncoderLayerForward()
    {
        using var output = encoderLayer!.Forward(input!, AttentionMask.None);
        device.Synchronize();
    }

    [Benchmark]
    public int[] DecodeWithCache() => Generation.Greedy(sample!, [source], [source.Length], GeneratedTokens, useCache: true)[0];

    [Benchmark]
    public int[] DecodeWithoutCache() => Generation.Greedy(sample!, [source], [source.Length], GeneratedTokens, useCache: false)[0];

    [GlobalCleanup]
    public void Cleanup()
    {
        encoderLayer?.Dispose();
        input?.Dispose();
        sample?.Dispose();
    }

    /// <summary>PyTorch TransformerEncoderLayer parameter names with small random values (also OrtComparisonBenchmarks' weights).</summary>
    internal static Dictionary<string, HostTensor> RandomEncoderLayer(int d, int ff)
    {
        int seed = 10;
        HostTensor Random(params int[] shape) =>
            new(shape, RandomData.Uniform(shape.Aggregate(1, (a, b) => a * b), seed++).Select(v => v * 0.1f).ToArray());
        return new Dictionary<string, HostTensor>
        {
            ["self_attn.in_proj_weight"] = Random(3 * d, d),
            ["self_attn.in_proj_bias"] = Random(3 * d),
            ["self_attn.out_proj.weight"] = Random(d, d),
            ["self_attn.out_proj.bias"] = Random(d),
            ["linear1.weight"] = Random(ff, d),
            ["linear1.bias"] = Random(ff),
            ["linear2.weight"] = Random(d, ff),
            ["linear2.bias"] = Random(d),
            ["norm1.weight"] = Random(d),
            ["norm1.bias"] = Random(d),
            ["norm2.weight"] = Random(d),
            ["norm2.bias"] = Random(d),
        };
    }

    /// <summary>Generated tokens over the mean time of a decoding run.</summary>
    private sealed class TokensPerSecondColumn() : CustomColumn("tokens/s", "Decoding: generated tokens (8 digits + eos) per second")
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            double? meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
            if (benchmarkCase.Descriptor.WorkloadMethod.Name == nameof(EncoderLayerForward) || meanNs is not > 0)
                return "-";
            return (GeneratedTokens / (meanNs.Value * 1e-9)).ToString("N2", style.CultureInfo);
        }
    }
}
