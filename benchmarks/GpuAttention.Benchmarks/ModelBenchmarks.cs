using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using GpuAttention.Cases;
using GpuAttention.Model;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;
using GpuAttention.Weights;

namespace GpuAttention.Benchmarks;

/// <summary>
/// Greedy decoding of the reverse-digits sample with and without the key/value cache (the encoder layer forward is a
/// benchmark case: <see cref="EncoderLayerBenchmarks"/>).
/// </summary>
[Config(typeof(Config))]
public class ModelBenchmarks
{
    private const string SampleInput = "31415926";

    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(new TokensPerSecondColumn());
        }
    }

    private ComputeDevice device = null!;
    private Transformer? sample;
    private int[] source = [];

    /// <summary>Tokens the sample emits for <see cref="SampleInput"/>: its 8 digits reversed, then eos.</summary>
    public static int GeneratedTokens => SampleInput.Length + 1;

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
    public int[] DecodeWithCache() => Generation.Greedy(sample!, [source], [source.Length], GeneratedTokens, useCache: true)[0];

    [Benchmark]
    public int[] DecodeWithoutCache() => Generation.Greedy(sample!, [source], [source.Length], GeneratedTokens, useCache: false)[0];

    [GlobalCleanup]
    public void Cleanup()
    {
        sample?.Dispose();
    }

    /// <summary>Generated tokens over the mean time of a decoding run.</summary>
    private sealed class TokensPerSecondColumn() : CustomColumn("tokens/s", "Decoding: generated tokens (8 digits + eos) per second")
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            double? meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
            if (meanNs is not > 0)
                return "-";
            return (GeneratedTokens / (meanNs.Value * 1e-9)).ToString("N2", style.CultureInfo);
        }
    }
}
