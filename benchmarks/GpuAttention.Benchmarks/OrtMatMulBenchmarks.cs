using BenchmarkDotNet.Attributes;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Benchmarks;

/// <summary>C[N, N] = A·B: ORT's MatMul (MLAS) beside our managed matmul.</summary>
public class OrtMatMulBenchmarks : OrtComparison
{
    private DeviceTensor a = null!, b = null!, c = null!;

    public static IEnumerable<OrtWorkload> Workloads => (Small ? [128] : new[] { 512, 1024, 2048 }).Select(OrtWorkload.MatMul);

    [ParamsSource(nameof(Workloads))]
    public OrtWorkload Workload { get; set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        int n = Workload.Size;
        float[] ha = RandomData.Uniform(n * n, 1), hb = RandomData.Uniform(n * n, 2), hc = new float[n * n];
        a = Own(Device.Upload(ha, n, n));
        b = Own(Device.Upload(hb, n, n));
        c = Own(Device.Allocate(n, n));
        Binding = Bind(OpenSession("matmul.onnx"), [("A", Tensor(ha, n, n)), ("B", Tensor(hb, n, n))], [("C", Tensor(hc, n, n))]);
        OnnxRuntime();
        Ours();
        Verify.Close(c.ToArray(), hc, $"Our matmul {n}³ vs ONNX Runtime");
    }

    [Benchmark]
    public int Ours()
    {
        MatMul.Multiply(a, b, c);
        Device.Synchronize();
        return 0;
    }
}
