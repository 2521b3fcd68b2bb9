using System.Text.Json;
using System.Text.Json.Serialization;
using BenchmarkDotNet.Exporters;
using BenchmarkDotNet.Loggers;
using BenchmarkDotNet.Reports;
using GpuAttention.Cases;

namespace GpuAttention.Benchmarks;

/// <summary>One measured case as a chart reads it.</summary>
public sealed record ChartPoint(string Family, string Series, string Engine, double Size, string SizeLabel,
    [property: JsonConverter(typeof(JsonStringEnumConverter<WorkUnit>))] WorkUnit Unit, double Work, double MeanNs)
{
    /// <summary>Work per second in the unit's display scale (GFLOP/s, GB/s, tokens/s).</summary>
    public double Throughput => GpuAttention.Cases.Throughput.Value(Work, Unit, MeanNs * 1e-9);
}

/// <summary>
/// Writes <c>results/&lt;class&gt;-points.json</c> beside BenchmarkDotNet's own reports: one <see cref="ChartPoint"/> per case,
/// read by the <c>charts</c> command. Cases whose parameters carry no <see cref="IChartable"/> (the peak-FLOPs probe,
/// the model benchmarks) are left out.
/// </summary>
public sealed class PointsExporter(Func<string, string> engine) : ExporterBase
{
    protected override string FileExtension => "json";

    protected override string FileNameSuffix => "-points";

    public override void ExportToLog(Summary summary, ILogger logger)
    {
        var points = new List<ChartPoint>();
        foreach (var report in summary.Reports)
        {
            var point = report.BenchmarkCase.Parameters.Items.Select(p => p.Value).OfType<IChartable>().FirstOrDefault();
            double? mean = report.ResultStatistics?.Mean;
            if (point is null || mean is not > 0)
                continue;
            string method = report.BenchmarkCase.Descriptor.WorkloadMethod.Name;
            string series = method == nameof(CaseBenchmarks.Run) ? point.Series : $"{point.Series} {method}".Trim();
            points.Add(new ChartPoint(point.Family, series, engine(method), point.Size, point.SizeLabel, point.Unit, point.Work, mean.Value));
        }
        logger.WriteLine(JsonSerializer.Serialize(points, new JsonSerializerOptions { WriteIndented = true }));
    }
}
