using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using GpuAttention.Cases;
using GpuAttention.Runtime;

namespace GpuAttention.Benchmarks;

/// <summary>
/// BenchmarkDotNet over the cases of one family (<see cref="Catalog"/>), the same ones <c>gpuattention bench</c> runs:
/// the setup checks the case against the reference (a failure reports NA rather than timing wrong code), prepares its
/// full-size operands, and records the device memory one call holds at its peak and beyond its operands.
/// </summary>
[Config(typeof(CaseConfig))]
public abstract class CaseBenchmarks
{
    private PreparedCase? prepared;

    /// <summary>The case; each family declares its <c>[ParamsSource]</c>.</summary>
    public abstract BenchCase Case { get; set; }

    protected static ComputeDevice Device => DeviceProvider.Device;

    [GlobalSetup]
    public void Setup()
    {
        double error = Case.Check(Device);
        if (!(error <= Case.CheckTolerance))
            throw new InvalidOperationException(
                $"{Case.Family} {Case} disagrees with the reference by {error:E2} (relative), beyond {Case.CheckTolerance:E0}. Not timing wrong results.");
        prepared = Case.Prepare(Device);
        long before = Device.BytesAllocated;
        Device.ResetPeakBytes();
        prepared.Run();
        long peak = Device.PeakBytesAllocated;
        Metrics.Write(CaseConfig.MemoryKey(Case, "peak"), peak);
        Metrics.Write(CaseConfig.MemoryKey(Case, "scratch"), peak - before);
    }

    [Benchmark]
    public void Run() => prepared!.Run();

    [GlobalCleanup]
    public void Cleanup() => prepared?.Dispose();
}

/// <summary>The columns of every case benchmark: throughput in the case's unit, and the device memory of one call.</summary>
public sealed class CaseConfig : ManualConfig
{
    public CaseConfig()
    {
        AddColumn(new ThroughputColumn());
        AddColumn(new DeviceMemoryColumn("Peak device mem", "Device memory held at the peak of one call: operands and any scratch",
            c => MemoryKey(c.Param<BenchCase>("Case"), "peak")));
        AddColumn(new DeviceMemoryColumn("Scratch mem", "Device memory one call holds beyond its operands (e.g. the unfused attention's B·H·L·L scores)",
            c => MemoryKey(c.Param<BenchCase>("Case"), "scratch")));
    }

    public static string MemoryKey(BenchCase c, string what) => $"{c.Family}-{c}-{what}".Replace(' ', '_');
}

[Config(typeof(CaseConfig))]
public class MatMulBenchmarks : CaseBenchmarks
{
    public static IEnumerable<BenchCase> Cases => Catalog.MatMul(Device, DeviceProvider.SmallSizes);

    [ParamsSource(nameof(Cases))]
    public override BenchCase Case { get; set; } = null!;
}

[Config(typeof(CaseConfig))]
public class SoftmaxBenchmarks : CaseBenchmarks
{
    public static IEnumerable<BenchCase> Cases => Catalog.Softmax(DeviceProvider.SmallSizes);

    [ParamsSource(nameof(Cases))]
    public override BenchCase Case { get; set; } = null!;
}

[Config(typeof(CaseConfig))]
public class LayerNormBenchmarks : CaseBenchmarks
{
    public static IEnumerable<BenchCase> Cases => Catalog.LayerNorm(DeviceProvider.SmallSizes);

    [ParamsSource(nameof(Cases))]
    public override BenchCase Case { get; set; } = null!;
}

[Config(typeof(CaseConfig))]
public class AttentionBenchmarks : CaseBenchmarks
{
    public static IEnumerable<BenchCase> Cases => Catalog.Attention(DeviceProvider.SmallSizes);

    [ParamsSource(nameof(Cases))]
    public override BenchCase Case { get; set; } = null!;
}

[Config(typeof(CaseConfig))]
public class AdditiveAttentionBenchmarks : CaseBenchmarks
{
    public static IEnumerable<BenchCase> Cases => Catalog.AdditiveAttention(DeviceProvider.SmallSizes);

    [ParamsSource(nameof(Cases))]
    public override BenchCase Case { get; set; } = null!;
}

[Config(typeof(CaseConfig))]
public class EncoderLayerBenchmarks : CaseBenchmarks
{
    public static IEnumerable<BenchCase> Cases => Catalog.EncoderLayer(DeviceProvider.SmallSizes);

    [ParamsSource(nameof(Cases))]
    public override BenchCase Case { get; set; } = null!;
}
