using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Benchmarks;

/// <summary>
/// Fused (flash-style) vs unfused (matmul → softmax → matmul) attention over [B, H, L, D] operands. Besides
/// time: GFLOP/s, and the device memory each path holds at its peak, measured in the setup.
/// </summary>
[Config(typeof(Config))]
public class AttentionBenchmarks
{
    private sealed class Config : ManualConfig
    {
        public Config()
        {
            AddColumn(RateColumn.Gflops(Flops, "4·B·H·L·L·D, halved when causal"));
            AddColumn(new DeviceMemoryColumn("Peak device mem", "Device memory held at the peak of one call: Q, K, V, O and any scratch",
                c => MemoryKey(c, "peak")));
            AddColumn(new DeviceMemoryColumn("Scratch mem", "Device memory one call allocates beyond its operands (the unfused path's B·H·L·L scores)",
                c => MemoryKey(c, "scratch")));
        }
    }

    private ComputeDevice device = null!;
    private DeviceTensor q = null!, k = null!, v = null!, o = null!;
    private AttentionMask mask = null!;

    public static IEnumerable<int> Lengths => Sizes.AttentionLengths;

    /// <summary>Lq = Lk.</summary>
    [ParamsSource(nameof(Lengths))]
    public int Length { get; set; }

    [Params(64, 128)]
    public int HeadDim { get; set; }

    [Params(false, true)]
    public bool Causal { get; set; }

    private static double Flops(BenchmarkCase c)
    {
        var (batch, heads) = Sizes.BatchHeads;
        int length = c.Param<int>(nameof(Length));
        double flops = 4.0 * batch * heads * length * length * c.Param<int>(nameof(HeadDim));
        return c.Param<bool>(nameof(Causal)) ? flops / 2 : flops;
    }

    private static string MemoryKey(BenchmarkCase c, string what) => MemoryKey(
        c.Descriptor.WorkloadMethod.Name, c.Param<int>(nameof(Length)), c.Param<int>(nameof(HeadDim)), c.Param<bool>(nameof(Causal)), what);

    private static string MemoryKey(string method, int length, int headDim, bool causal, string what) =>
        $"attention-{method}-L{length}-D{headDim}-{(causal ? "causal" : "full")}-{what}";

    [GlobalSetup]
    public void Setup()
    {
        device = DeviceProvider.Device;
        mask = Causal ? AttentionMask.Causal : AttentionMask.None;
        CheckAgainstReference();

        var (batch, heads) = Sizes.BatchHeads;
        int[] shape = [batch, heads, Length, HeadDim];
        int count = batch * heads * Length * HeadDim;
        q = device.Upload(Verify.RandomData(count, 1), shape);
        k = device.Upload(Verify.RandomData(count, 2), shape);
        v = device.Upload(Verify.RandomData(count, 3), shape);
        o = device.Allocate(shape);

        // Full size, once each: measures each path's memory, compiles the kernels, and checks fused against unfused.
        MeasureMemory(nameof(Unfused), Unfused);
        float[] unfused = o.ToArray();
        MeasureMemory(nameof(Fused), Fused);
        Verify.Close(o.ToArray(), unfused, $"Fused vs unfused attention L={Length} D={HeadDim}");
    }

    private void MeasureMemory(string method, Action call)
    {
        long before = device.BytesAllocated;
        device.ResetPeakBytes();
        call();
        long peak = device.PeakBytesAllocated;
        Metrics.Write(MemoryKey(method, Length, HeadDim, Causal, "peak"), peak);
        Metrics.Write(MemoryKey(method, Length, HeadDim, Causal, "scratch"), peak - before);
    }

    /// <summary>Both paths against the double-precision reference at L = min(Length, 128).</summary>
    private void CheckAgainstReference()
    {
        const int heads = 2;
        int length = Math.Min(Length, 128);
        int count = heads * length * HeadDim;
        var (hq, hk, hv) = (Verify.RandomData(count, 4), Verify.RandomData(count, 5), Verify.RandomData(count, 6));
        double scale = 1.0 / Math.Sqrt(HeadDim);
        var reference = Causal ? new ReferenceMask { Right = 0 } : new ReferenceMask();
        double[] expected = ReferenceOps.Attention(hq, hk, hv, 1, heads, length, length, HeadDim, reference, scale).Output;
        using var tq = device.Upload(hq, 1, heads, length, HeadDim);
        using var tk = device.Upload(hk, 1, heads, length, HeadDim);
        using var tv = device.Upload(hv, 1, heads, length, HeadDim);
        using var to = device.Allocate(1, heads, length, HeadDim);
        Attention.Fused(tq, tk, tv, to, mask);
        Verify.Close(to.ToArray(), expected, $"Fused attention L={length} D={HeadDim} vs reference");
        Attention.Unfused(tq, tk, tv, to, mask);
        Verify.Close(to.ToArray(), expected, $"Unfused attention L={length} D={HeadDim} vs reference");
    }

    [Benchmark(Baseline = true)]
    public void Unfused()
    {
        Attention.Unfused(q, k, v, o, mask);
        device.Synchronize();
    }

    [Benchmark]
    public void Fused()
    {
        Attention.Fused(q, k, v, o, mask);
        device.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        q.Dispose();
        k.Dispose();
        v.Dispose();
        o.Dispose();
    }
}
