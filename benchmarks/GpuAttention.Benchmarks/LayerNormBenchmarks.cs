using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Benchmarks;

/// <summary>Layer norm over [rows, width], with and without the fused residual add.</summary>
[Config(typeof(Config))]
public class LayerNormBenchmarks
{
    private const float Epsilon = 1e-5f;

    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(RateColumn.Gbps(
            c => Bytes(c.Param<int>(nameof(Rows)), c.Param<int>(nameof(Width)), c.Param<bool>(nameof(Residual))),
            "bytes read + written (x, residual, gain, bias, y)"));
    }

    private ComputeDevice device = null!;
    private DeviceTensor x = null!, gain = null!, bias = null!, y = null!;
    private DeviceTensor? residual;

    public static IEnumerable<int> RowCounts => Sizes.LayerNormRows;

    public static IEnumerable<int> Widths => Sizes.LayerNormWidths;

    [ParamsSource(nameof(RowCounts))]
    public int Rows { get; set; }

    [ParamsSource(nameof(Widths))]
    public int Width { get; set; }

    [Params(false, true)]
    public bool Residual { get; set; }

    public static double Bytes(int rows, int width, bool residual) =>
        sizeof(float) * ((residual ? 3.0 : 2.0) * rows * width + 2.0 * width);

    [GlobalSetup]
    public void Setup()
    {
        device = DeviceProvider.Device;
        CheckAgainstReference();
        x = device.Upload(Verify.RandomData(Rows * Width, 1), Rows, Width);
        residual = Residual ? device.Upload(Verify.RandomData(Rows * Width, 2), Rows, Width) : null;
        gain = device.Upload(Verify.RandomData(Width, 3), Width);
        bias = device.Upload(Verify.RandomData(Width, 4), Width);
        y = device.Allocate(Rows, Width);
        Apply();
    }

    /// <summary>16 rows of the benchmarked width (the same launch path) against the reference.</summary>
    private void CheckAgainstReference()
    {
        const int rows = 16;
        var (hx, hr, hg, hb) = (Verify.RandomData(rows * Width, 5), Verify.RandomData(rows * Width, 6),
            Verify.RandomData(Width, 7), Verify.RandomData(Width, 8));
        using var tx = device.Upload(hx, rows, Width);
        using var tr = device.Upload(hr, rows, Width);
        using var tg = device.Upload(hg, Width);
        using var tb = device.Upload(hb, Width);
        using var ty = device.Allocate(rows, Width);
        LayerNorm.Apply(tx, tg, tb, ty, Epsilon, Residual ? tr : null);
        Verify.Close(ty.ToArray(), ReferenceOps.LayerNorm(hx, Residual ? hr : null, hg, hb, Width, Epsilon),
            $"LayerNorm width {Width} vs reference");
    }

    [Benchmark]
    public void Apply()
    {
        LayerNorm.Apply(x, gain, bias, y, Epsilon, residual);
        device.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        x.Dispose();
        residual?.Dispose();
        gain.Dispose();
        bias.Dispose();
        y.Dispose();
    }
}
