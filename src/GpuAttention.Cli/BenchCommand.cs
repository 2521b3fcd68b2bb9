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
    public static Command Create(DeviceOptions deviceOptions)
    {
        var seconds = new Option<double>("--seconds") { Description = "Time spent measuring each case", DefaultValueFactory = _ => 0.5 };
        var filters = new Option<string[]>("--filter")
        {
            Description = "Only cases whose family, variant or shape contains this text (e.g. 'attention', 'causal', 'L1024'); repeat it for any of several",
        };
        var save = new Option<DirectoryInfo?>("--save")
        {
            Description = "Also write DIR/results.json: every case's check, time, rate, device memory and problem",
        };
        var withTensors = new Option<bool>("--with-tensors")
        {
            Description = "With --save: also write each timed case's operands and output to DIR/cases/*.safetensors (for tools/gpu/torch_compare.py)",
        };
        var command = new Command("bench", "Check each kernel against the reference, then time it") { seconds, filters, save, withTensors };
        command.SetAction(result =>
        {
            using var device = deviceOptions.Open(result);
            bool small = Catalog.SmallSizesFor(device);
            string[] texts = result.GetValue(filters) ?? [];
            var cases = Catalog.All(device, small)
                .Where(c => texts.Length == 0 || texts.Any(text => $"{c.Family} {c} ".Contains(text, StringComparison.OrdinalIgnoreCase)))
                .ToList();
            if (cases.Count == 0)
                throw new UsageException($"No case matches --filter {string.Join(", ", texts.Select(t => $"'{t}'"))}.");
            if (result.GetValue(withTensors) && result.GetValue(save) is null)
                throw new UsageException("--with-tensors writes into the --save folder: give --save DIR too.");
            var saved = result.GetValue(save) is { } folder ? new SavedResults(folder, device, small, result.GetValue(withTensors)) : null;
            var table = new Table().AddColumns("family", "case", "check (max rel. err)", "ms", "throughput", "scratch");
            bool allPassed = true;
            AnsiConsole.Status().Start("starting", status =>
            {
                foreach (var c in cases)
                {
                    status.Status($"{c.Family} {c}: checking");
                    double error = c.Check(device);
                    bool ok = error <= c.CheckTolerance;
                    allPassed &= ok;
                    var measured = ok ? Measure(c, device, result.GetValue(seconds), saved, status) : null;
                    saved?.Add(c, error, ok, measured);
                    // Rewritten after every case, so a run stopped by a time limit keeps what it measured.
                    saved?.Write();
                    table.AddRow(c.Family, Markup.Escape(c.ToString()), ok ? $"[green]ok[/] ({error:E1})" : $"[red]FAIL[/] ({error:E1})",
                        measured is null ? "-" : $"{measured.Milliseconds:F3}", measured is null ? "-" : c.Rate(measured.Milliseconds * 1e-3),
                        measured is null ? "-" : Bytes(measured.ScratchBytes));
                }
            });
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(device.ToString())}[/]" + (small
                ? " — CPU hardware running GPU kernels: small sizes; these figures say nothing about a GPU."
                : device.Kind == DeviceKind.ManagedCpu ? " — the managed CPU backend; benchmarks/ compares it with ONNX Runtime." : ""));
            AnsiConsole.Write(table);
            if (saved is not null)
                AnsiConsole.MarkupLine($"Results in [bold]{Markup.Escape(saved.Write())}[/]");
            return allPassed ? 0 : 1;
        });
        return command;
    }

    /// <summary>
    /// Times one case: device memory over one call (peak: all it holds; scratch: beyond its operands), then the mean time;
    /// when <paramref name="saved"/> keeps tensors, the operands and the output of the last call go to its folder.
    /// </summary>
    private static Measured Measure(BenchCase c, ComputeDevice device, double seconds, SavedResults? saved, StatusContext status)
    {
        status.Status($"{c.Family} {c}: timing");
        using var prepared = c.Prepare(device);
        long before = device.BytesAllocated;
        device.ResetPeakBytes();
        prepared.Run();
        long peak = device.PeakBytesAllocated;
        var measured = new Measured(Time(prepared, seconds), peak, peak - before);
        if (saved is { WithTensors: true })
        {
            status.Status($"{c.Family} {c}: saving its tensors");
            saved.SaveTensors(c, prepared);
        }
        return measured;
    }

    private static string Bytes(long bytes) => bytes switch
    {
        >= 1 << 30 => $"{bytes / (double)(1 << 30):F1} GiB",
        >= 1 << 20 => $"{bytes / (double)(1 << 20):F1} MiB",
        >= 1 << 10 => $"{bytes / (double)(1 << 10):F1} KiB",
        _ => $"{bytes} B",
    };

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
