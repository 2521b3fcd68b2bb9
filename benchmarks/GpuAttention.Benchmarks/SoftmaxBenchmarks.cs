using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Benchmarks;

/// <summary>Masked softmax over the rows of a [batch, heads, L, L] score tensor, y = softmax(x/8 + mask).</summary>
[Config(typeof(Config))]
public class SoftmaxBenchmarks
{
    private const float Scale = 0.125f;

    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(RateColumn.Gbps(c => Bytes(c.Param<int>(nameof(Length))), "bytes read + written (2·4·B·H·L·L)"));
    }

    private ComputeDevice device = null!;
    private DeviceTensor x = null!, y = null!;
    private AttentionMask mask = null!;

    public static IEnumerable<int> Lengths => Sizes.SoftmaxLengths;

    [ParamsSource(nameof(Lengths))]
    public int Length { get; set; }

    [Params(false, true)]
    public bool Causal { get; set; }

    /// <summary>x read once, y written once (the mask is computed, not read).</summary>
    public static double Bytes(int length)
    {
        var (batch, heads) = Sizes.BatchHeads;
        return 2.0 * sizeof(float) * batch * heads * length * length;
    }

    [GlobalSetup]
    public void Setup()
    {
        device = DeviceProvider.Device;
        mask = Causal ? AttentionMask.Causal : AttentionMask.None;
        CheckAgainstReference();
        var (batch, heads) = Sizes.BatchHeads;
        x = device.Upload(Verify.RandomData(batch * heads * Length * Length, 1), batch, heads, Length, Length);
        y = device.Allocate(batch, heads, Length, Length);
        Apply();
    }

    /// <summary>16 query rows of the benchmarked row length (the same launch path) against the reference.</summary>
    private void CheckAgainstReference()
    {
        const int heads = 2, rows = 16;
        float[] hx = Verify.RandomData(heads * rows * Length, 2);
        var reference = Causal ? new ReferenceMask { Right = 0 } : new ReferenceMask();
        using var tx = device.Upload(hx, 1, heads, rows, Length);
        using var ty = device.Allocate(1, heads, rows, Length);
        Softmax.Apply(tx, ty, mask, Scale);
        Verify.Close(ty.ToArray(), ReferenceOps.Softmax(hx, 1, heads, rows, Length, reference, Scale), $"Softmax rows of {Length} vs reference");
    }

    [Benchmark]
    public void Apply()
    {
        Softmax.Apply(x, y, mask, Scale);
        device.Synchronize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        x.Dispose();
        y.Dispose();
    }
}
