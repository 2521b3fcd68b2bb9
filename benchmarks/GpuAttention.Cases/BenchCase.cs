using GpuAttention.Weights;
using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Cases;

/// <summary>What a case's work counts: floating-point operations or bytes moved.</summary>
public enum WorkUnit
{
    /// <summary>Multiplies and adds, each one.</summary>
    Flops,
    /// <summary>Bytes read plus bytes written.</summary>
    Bytes,
    /// <summary>Tokens generated.</summary>
    Tokens,
}

/// <summary>A point of a chart: which chart, which line, where on the x axis, and how much work one call does.</summary>
public interface IChartable
{
    /// <summary>The chart (an op family).</summary>
    string Family { get; }
    /// <summary>The line within it (a variant: an algorithm, a mask, an engine).</summary>
    string Series { get; }
    /// <summary>The x coordinate: the size that grows along the family (L, N, width).</summary>
    double Size { get; }
    /// <summary>What <see cref="Size"/> measures, for the axis label.</summary>
    string SizeLabel { get; }
    /// <summary>Work of one call, in <see cref="Unit"/>.</summary>
    double Work { get; }
    /// <summary>The unit of <see cref="Work"/>.</summary>
    WorkUnit Unit { get; }
}

/// <summary>Work per second in the unit people read: GFLOP/s, GB/s or tokens/s.</summary>
public static class Throughput
{
    /// <summary><paramref name="work"/> done in <paramref name="seconds"/>, scaled to the unit's display scale.</summary>
    public static double Value(double work, WorkUnit unit, double seconds) => unit == WorkUnit.Tokens ? work / seconds : work / seconds / 1e9;

    /// <summary>The unit's display name.</summary>
    public static string Name(WorkUnit unit) => unit switch
    {
        WorkUnit.Flops => "GFLOP/s",
        WorkUnit.Bytes => "GB/s",
        _ => "tokens/s",
    };

    /// <summary>e.g. <c>373.11 GFLOP/s</c>, or three significant digits below 1 (the CPU accelerator's rates).</summary>
    public static string Format(double work, WorkUnit unit, double seconds)
    {
        double value = Value(work, unit, seconds);
        return $"{value.ToString(value >= 1 ? "F2" : "G3", System.Globalization.CultureInfo.InvariantCulture)} {Name(unit)}";
    }
}

/// <summary>
/// One benchmark case: an op family's problem at one size and variant. Before anything is timed, <see cref="Check"/> runs
/// a small problem of the same kind (odd sizes, partial tiles, the same launch path) on the device against the
/// double-precision reference; then <see cref="Prepare"/> uploads the full-size operands and hands back the timed call.
/// BenchmarkDotNet and <c>gpuattention bench</c> run these same definitions.
/// </summary>
public abstract class BenchCase(string family, string variant, string shape, double size, string sizeLabel, double work, WorkUnit unit)
    : IChartable, IComparable
{
    /// <summary>Largest |actual − expected| / max(1, |expected|) a case may show and still be timed.</summary>
    public const double Tolerance = 1e-3;

    /// <summary>
    /// The largest relative error <see cref="Check"/> may return for this case: <see cref="Tolerance"/>, or a case's own
    /// stated rounding budget where it runs in 16 bits against the fp32 reference.
    /// </summary>
    public virtual double CheckTolerance => Tolerance;

    /// <inheritdoc />
    public string Family { get; } = family;

    /// <summary>The variant: algorithm, fused or not, masked or not.</summary>
    public string Variant { get; } = variant;

    /// <summary>The problem's dimensions in words, e.g. <c>B2 H8 L1024</c>.</summary>
    public string Shape { get; } = shape;

    /// <inheritdoc />
    public string Series => Variant;

    /// <inheritdoc />
    public double Size { get; } = size;

    /// <inheritdoc />
    public string SizeLabel { get; } = sizeLabel;

    /// <inheritdoc />
    public double Work { get; } = work;

    /// <inheritdoc />
    public WorkUnit Unit { get; } = unit;

    /// <summary>The largest relative error of this kind of problem on <paramref name="device"/> against the reference.</summary>
    public abstract double Check(ComputeDevice device);

    /// <summary>Allocates and uploads the full-size operands; the result's <see cref="PreparedCase.Run"/> is one synchronised call.</summary>
    public abstract PreparedCase Prepare(ComputeDevice device);

    /// <summary>
    /// The problem as another framework needs it to run the same computation: <c>op</c> and its sizes and options, named as
    /// <see cref="PreparedCase.Download"/> names the tensors (<c>gpuattention bench --save</c> writes both; tools/gpu/torch_compare.py
    /// reads them).
    /// </summary>
    public abstract object Problem { get; }

    /// <summary>The throughput of one call that took <paramref name="seconds"/>, e.g. <c>373.11 GFLOP/s</c>.</summary>
    public string Rate(double seconds) => Throughput.Format(Work, Unit, seconds);

    /// <summary>Orders BenchmarkDotNet's rows by variant, then size (not by the text of the name, which puts L64 after L256).</summary>
    public int CompareTo(object? obj) => obj is BenchCase other
        ? (string.CompareOrdinal(Variant, other.Variant), Size, Work).CompareTo((0, other.Size, other.Work))
        : 1;

    /// <summary>Variant and shape: how BenchmarkDotNet and the CLI name the case.</summary>
    public override string ToString() => $"{Variant} {Shape}";

    /// <summary>The values as a tensor of <paramref name="dtype"/> (rounded to nearest-even on the device when 16-bit).</summary>
    protected static DeviceTensor Operand(ComputeDevice device, DType dtype, float[] values, params int[] shape)
    {
        var wide = device.Upload(values, shape);
        if (dtype == DType.F32)
            return wide;
        using (wide)
        {
            var narrow = device.Allocate(dtype, shape);
            Elementwise.Convert(wide, narrow);
            return narrow;
        }
    }

    /// <summary>max |got − want| / max(1, |want|); +∞ when a value is NaN where the reference's is not, or the lengths differ.</summary>
    protected static double RelativeError(ReadOnlySpan<float> got, ReadOnlySpan<double> want)
    {
        if (got.Length != want.Length)
            return double.PositiveInfinity;
        double worst = 0;
        for (int i = 0; i < got.Length; i++)
        {
            double error = Math.Abs(got[i] - want[i]) / Math.Max(1.0, Math.Abs(want[i]));
            worst = double.IsNaN(error) ? double.PositiveInfinity : Math.Max(worst, error);
        }
        return worst;
    }
}

/// <summary>
/// A case's full-size operands and its timed call; disposing frees what it owns. <see cref="Download"/> copies the operands
/// and the last call's output (named <c>output</c>) to the host, by the names of <see cref="BenchCase.Problem"/>.
/// </summary>
public sealed class PreparedCase(ComputeDevice device, Action call, Func<IReadOnlyDictionary<string, HostTensor>> download,
    params IDisposable[] owned) : IDisposable
{
    /// <summary>One call of the op, synchronised so the time covers its kernels.</summary>
    public void Run()
    {
        call();
        device.Synchronize();
    }

    /// <summary>The operands and the last call's output, on the host.</summary>
    public IReadOnlyDictionary<string, HostTensor> Download() => download();

    /// <summary>A device tensor's shape and values, on the host.</summary>
    public static HostTensor Host(DeviceTensor tensor) => new([.. tensor.Shape], tensor.ToArray());

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var item in owned)
            item.Dispose();
    }
}
