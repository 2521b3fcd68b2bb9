using System.Text.Json;
using GpuAttention.Cases;
using GpuAttention.Runtime;
using GpuAttention.Weights;

namespace GpuAttention.Cli;

/// <summary>A timed case's figures: mean milliseconds per call and the device memory one call holds.</summary>
internal sealed record Measured(double Milliseconds, long PeakBytes, long ScratchBytes);

/// <summary>
/// What <c>bench --save DIR</c> writes: DIR/results.json, one entry per case (its check, time, rate, device memory and
/// <see cref="BenchCase.Problem"/>), and with <c>--with-tensors</c> DIR/cases/NAME.safetensors with each timed case's
/// operands and output, so that another framework (tools/gpu/torch_compare.py) can run the same problem on the same inputs
/// and compare.
/// </summary>
internal sealed class SavedResults(DirectoryInfo folder, ComputeDevice device, bool smallSizes, bool withTensors)
{
    /// <summary>Whether timed cases' operands and outputs are written too.</summary>
    public bool WithTensors => withTensors;

    private readonly List<object> cases = [];
    private readonly Dictionary<BenchCase, string> tensorFiles = [];

    public void SaveTensors(BenchCase c, PreparedCase prepared)
    {
        string relative = Path.Combine("cases", FileName(c) + ".safetensors");
        Directory.CreateDirectory(Path.Combine(folder.FullName, "cases"));
        SafeTensors.Write(Path.Combine(folder.FullName, relative), prepared.Download());
        tensorFiles[c] = relative;
    }

    public void Add(BenchCase c, double checkError, bool passed, Measured? measured) => cases.Add(new
    {
        family = c.Family,
        variant = c.Variant,
        shape = c.Shape,
        name = $"{c.Family} {c}",
        work = c.Work,
        unit = c.Unit.ToString(),
        throughputUnit = Throughput.Name(c.Unit),
        checkError = double.IsFinite(checkError) ? checkError : (double?)null,
        passed,
        ms = measured?.Milliseconds,
        throughput = measured is null ? (double?)null : Throughput.Value(c.Work, c.Unit, measured.Milliseconds * 1e-3),
        peakBytes = measured?.PeakBytes,
        scratchBytes = measured?.ScratchBytes,
        problem = c.Problem,
        tensors = tensorFiles.TryGetValue(c, out string? file) ? file : null,
    });

    /// <summary>Writes results.json and returns its path.</summary>
    public string Write()
    {
        string path = Path.Combine(folder.FullName, "results.json");
        Directory.CreateDirectory(folder.FullName);
        var document = new { device = device.ToString(), deviceKind = ComputeDevice.KindName(device.Kind), smallSizes, cases };
        File.WriteAllText(path, JsonSerializer.Serialize(document, new JsonSerializerOptions { WriteIndented = true }));
        return path;
    }

    /// <summary>e.g. <c>attention-fused_causal_d64-B2_H8_L1024</c>: the case's name with only letters, digits, '-' and '_'.</summary>
    private static string FileName(BenchCase c) =>
        new($"{c.Family}-{c.Variant}-{c.Shape}".Select(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' ? ch : '_').ToArray());
}
