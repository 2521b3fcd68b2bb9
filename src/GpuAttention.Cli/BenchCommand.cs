using System.CommandLine;
using System.Diagnostics;
using GpuAttention.Cases;
using GpuAttention.Runtime;
using Spectre.Console;

namespace GpuAttention.Cli;

/// <summary>
/// <c>bench</c>: the quick look before the full BenchmarkDotNet run, over the same cases (<see cref="Catalog"/>). Each is
/// first checked against the double-precision reference on a small problem of its kind, then timed (kernel time only:
/// inputs are uploaded and kernels compiled before the clock starts, and the device is synchronised around each call).
/// </summary>
internal static class BenchCommand
{
    public static Command Create(Option<string?> deviceOption)
    {
        var seconds = new Option<double>("--seconds") { Description = "Time spent measuring each case", DefaultValueFactory = _ => 0.5 };
        var filter = new Option<string?>("--filter") { Description = "Only cases whose family, variant or shape contains this text (e.g. 'attention', 'causal', 'L1024')" };
        var command = new Command("bench", "Check each kernel against the reference, then time it") { seconds, filter };
        command.SetAction(result =>
        {
            using var device = DeviceChoice.Open(result.GetValue(deviceOption));
            bool small = Catalog.SmallSizesFor(device);
            string? text = result.GetValue(filter);
            var cases = Catalog.All(device, small)
                .Where(c => text is null || $"{c.Family} {c} ".Contains(text, StringComparison.OrdinalIgnoreCase))
                .ToList();
            var table = new Table().AddColumns("family", "case", "check (max rel. err)", "ms", "throughput");
            bool allPassed = true;
            AnsiConsole.Status().Start("starting", status =>
            {
                foreach (var c in cases)
                {
                    status.Status($"{c.Family} {c}: checking");
                    double error = c.Check(device);
                    bool ok = error <= BenchCase.Tolerance;
                    allPassed &= ok;
                    status.Status($"{c.Family} {c}: timing");
                    double ms = double.NaN;
                    if (ok)
                    {
                        using var prepared = c.Prepare(device);
                        ms = Time(prepared, result.GetValue(seconds));
                    }
                    table.AddRow(c.Family, Markup.Escape(c.ToString()), ok ? $"[green]ok[/] ({error:E1})" : $"[red]FAIL[/] ({error:E1})",
                        ok ? $"{ms:F3}" : "-", ok ? c.Rate(ms * 1e-3) : "-");
                }
            });
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(device.ToString())}[/]" + (small
                ? " — CPU hardware running GPU kernels: small sizes; these figures say nothing about a GPU."
                : device.Kind == DeviceKind.ManagedCpu ? " — the managed CPU backend; benchmarks/ compares it with ONNX Runtime." : ""));
            AnsiConsole.Write(table);
            return allPassed ? 0 : 1;
        });
        return command;
    }

    /// <summary>Mean milliseconds per call over at least <paramref name="seconds"/> and three calls, after one untimed call.</summary>
    private static double Time(PreparedCase prepared, double seconds)
    {
        prepared.Run();
        int iterations = 0;
        var clock = Stopwatch.StartNew();
        do
        {
            prepared.Run();
            iterations++;
        }
        while (clock.Elapsed.TotalSeconds < seconds || iterations < 3);
        return clock.Elapsed.TotalMilliseconds / iterations;
    }
}
