using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using GpuAttention.Cases;

namespace GpuAttention.Benchmarks;

/// <summary>A custom column: the base of the rate and memory columns below.</summary>
public abstract class CustomColumn(string name, string legend) : IColumn
{
    public string Id => GetType().Name + "." + ColumnName;
    public string ColumnName => name;
    public string Legend => legend;
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);
    public abstract string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style);
}

/// <summary>
/// Work per operation over the mean time per operation: FLOPs per ns is GFLOP/s, bytes per ns is GB/s.
/// <paramref name="workPerOperation"/> reads the case's parameters.
/// </summary>
public sealed class RateColumn(string name, string legend, Func<BenchmarkCase, double> workPerOperation)
    : CustomColumn(name, legend)
{
    public static RateColumn Gflops(Func<BenchmarkCase, double> flops, string counted) =>
        new("GFLOP/s", $"Throughput: {counted} / mean time, in 10^9 floating-point operations per second", flops);

    public static RateColumn Gbps(Func<BenchmarkCase, double> bytes, string counted) =>
        new("GB/s", $"Bandwidth: {counted} / mean time, in 10^9 bytes per second", bytes);

    public override string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        double? meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
        if (meanNs is not > 0)
            return "NA";
        double rate = workPerOperation(benchmarkCase) / meanNs.Value;
        return rate.ToString(rate >= 1 ? "N2" : "G3", style.CultureInfo); // simulator rates are far below 1
    }
}

/// <summary>A case's work (<see cref="BenchCase.Work"/>) over the mean time, in GFLOP/s or GB/s as the case counts it.</summary>
public sealed class ThroughputColumn() : CustomColumn("Throughput", "The case's work (FLOPs or bytes, see benchmarks/README.md) / mean time, per second")
{
    public override string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        double? meanNs = summary[benchmarkCase]?.ResultStatistics?.Mean;
        if (meanNs is not > 0)
            return "NA";
        return benchmarkCase.Param<BenchCase>("Case").Rate(meanNs.Value * 1e-9);
    }
}

/// <summary>Device memory a benchmark process measured in its setup and recorded in <see cref="Metrics"/>.</summary>
public sealed class DeviceMemoryColumn(string name, string legend, Func<BenchmarkCase, string> key)
    : CustomColumn(name, legend)
{
    public override string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style) =>
        Metrics.Read(key(benchmarkCase)) is { } bytes ? FormatBytes(bytes, style.CultureInfo) : "NA";

    public static string FormatBytes(long bytes, IFormatProvider culture) => bytes switch
    {
        < 1024 => bytes.ToString(culture) + " B",
        < 1024 * 1024 => (bytes / 1024.0).ToString("0.#", culture) + " KiB",
        _ => (bytes / (1024.0 * 1024.0)).ToString("0.#", culture) + " MiB",
    };
}

/// <summary>Reads a parameter of a benchmark case by name.</summary>
public static class CaseExtensions
{
    public static T Param<T>(this BenchmarkCase benchmarkCase, string name) => (T)benchmarkCase.Parameters[name]!;
}
