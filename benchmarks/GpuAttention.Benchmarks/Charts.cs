using System.Globalization;
using System.Text.Json;
using GpuAttention.Cases;
using ScottPlot;

namespace GpuAttention.Benchmarks;

/// <summary>
/// The <c>charts</c> command: reads every <c>*-points.json</c> (see <see cref="PointsExporter"/>) under a results folder
/// and draws one PNG per family — throughput against size on a log₂ axis, a line per series and engine, so a GPU run's
/// points join the CPU's and the reference engine's in the same chart.
/// </summary>
public static class Charts
{
    /// <summary>Draws the charts of <paramref name="resultsFolder"/> into <paramref name="outputFolder"/>; returns the files written.</summary>
    public static IReadOnlyList<string> Draw(string resultsFolder, string outputFolder)
    {
        if (!Directory.Exists(resultsFolder))
            throw new DirectoryNotFoundException($"No benchmark results at '{resultsFolder}': run the benchmarks first.");
        var points = Directory.EnumerateFiles(resultsFolder, "*-points.json", SearchOption.AllDirectories)
            .SelectMany(file => JsonSerializer.Deserialize<ChartPoint[]>(File.ReadAllText(file))
                ?? throw new InvalidDataException($"'{file}' holds no chart points."))
            .ToList();
        if (points.Count == 0)
            throw new InvalidDataException($"'{resultsFolder}' holds no *-points.json: run the benchmarks with this program first.");
        Directory.CreateDirectory(outputFolder);
        var written = new List<string>();
        foreach (var family in points.GroupBy(p => p.Family))
        {
            var plot = new Plot();
            foreach (var line in family.GroupBy(p => (p.Series, p.Engine)).OrderBy(g => g.Key.Engine).ThenBy(g => g.Key.Series))
            {
                var ordered = line.OrderBy(p => p.Size).ToList();
                var scatter = plot.Add.Scatter(ordered.Select(p => Math.Log2(p.Size)).ToArray(), ordered.Select(p => p.Throughput).ToArray());
                scatter.LegendText = $"{line.Key.Series} — {line.Key.Engine}".TrimStart(' ', '—');
            }
            var sizes = family.Select(p => p.Size).Distinct().Order().ToArray();
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
                sizes.Select(Math.Log2).ToArray(), sizes.Select(s => s.ToString(CultureInfo.InvariantCulture)).ToArray());
            plot.Axes.Bottom.Label.Text = family.First().SizeLabel;
            plot.Axes.Left.Label.Text = GpuAttention.Cases.Throughput.Name(family.First().Unit);
            plot.Title(family.Key);
            plot.ShowLegend(Alignment.UpperLeft);
            string file = Path.Combine(outputFolder, FileName(family.Key) + ".png");
            plot.SavePng(file, 900, 560);
            written.Add(file);
        }
        return written;
    }

    private static string FileName(string family) =>
        new string(family.ToLowerInvariant().Select(c => char.IsLetterOrDigit(c) ? c : '-').ToArray()).Replace("--", "-").Trim('-');
}
