using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Benchmarks;

/// <summary>Naive (one thread per output) vs tiled matmul; square shapes and one Linear layer (A·Bᵀ + bias).</summary>
[Config(typeof(Config))]
public class MatMulBenchmarks
{
    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(RateColumn.Gflops(c => c.Param<MatMulShape>(nameof(Shape)).Flops, "2·M·N·K"));
    }

    private ComputeDevice device = null!;
    private DeviceTensor a = null!, b = null!, c = null!;
    private DeviceTensor? bias;

    public static IEnumerable<MatMulShape> Shapes => Sizes.MatMul;

    [ParamsSource(nameof(Shapes))]
    public MatMulShape Shape { get; set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        device = DeviceProvider.Device;
        CheckAgainstReference();
        var (m, n, k) = (Shape.M, Shape.N, Shape.K);
        a = device.Upload(Verify.RandomData(m * k, 1), m, k);
        b = Shape.IsLinear ? device.Upload(Verify.RandomData(n * k, 2), n, k) : device.Upload(Verify.RandomData(k * n, 2), k, n);
        bias = Shape.IsLinear ? device.Upload(Verify.RandomData(n, 3), n) : null;
        c = device.Allocate(m, n);
        // Full size: tiled against naive (this also compiles both kernels before timing).
        Naive();
        float[] naive = c.ToArray();
        Tiled();
        Verify.Close(c.ToArray(), naive, $"Tiled vs naive matmul {Shape}");
    }

    /// <summary>Both kernels against the double-precision reference on an odd shape (partial tiles) of this kind.</summary>
    private void CheckAgainstReference()
    {
        const int m = 67, n = 45, k = 71;
        var (ha, hb, hbias) = (Verify.RandomData(m * k, 4), Verify.RandomData(n * k, 5), Verify.RandomData(n, 6));
        double[] expected = ReferenceOps.MatMul(ha, hb, null, 1, m, n, k, transA: false, transB: Shape.IsLinear,
            aBatched: false, bBatched: false, bias: Shape.IsLinear ? hbias : null);
        using var ta = device.Upload(ha, m, k);
        using var tb = Shape.IsLinear ? device.Upload(hb, n, k) : device.Upload(hb, k, n);
        using var tbias = device.Upload(hbias, n);
        using var tc = device.Allocate(m, n);
        foreach (var algorithm in new[] { MatMulAlgorithm.Naive, MatMulAlgorithm.Tiled })
        {
            MatMul.Multiply(ta, tb, tc, transposeB: Shape.IsLinear, bias: Shape.IsLinear ? tbias : null, algorithm: algorithm);
            Verify.Close(tc.ToArray(), expected, $"{algorithm} matmul {m}x{n}x{k} vs reference");
        }
    }

    [Benchmark(Baseline = true)]
    public void Naive()
    {
        MatMul.Multiply(a, b, c, transposeB: Shape.IsLinear, bias: bias, algorithm: MatMulAlgorithm.Naive);
        device.Synchronize();
    }

    [Benchmark]
    public void Tiled()
    {
        MatMul.Multiply(a, b, c, transposeB: Shape.IsLinear, bias: bias, algorithm: MatMulAlgorithm.Tiled);
        device.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        a.Dispose();
        b.Dispose();
        c.Dispose();
        bias?.Dispose();
    }
}
