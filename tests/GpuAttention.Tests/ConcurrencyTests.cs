using GpuAttention.Model;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Tests;

/// <summary>
/// Many threads sharing one managed device — and one model, or one weight — get what one thread gets, and the device's
/// byte count is exact afterwards. The weight a matmul packs and keeps is the shared state that needs this: threads used
/// to pack it at once and free each other's copy.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class ConcurrencyTests
{
    private const int Threads = 16;

    [Fact]
    public void ThreadsSharingAModelDecodeAsOneThreadDoes()
    {
        using var device = ComputeDevice.Create(DeviceKind.ManagedCpu);
        using var model = Transformer.Load(device, Path.Combine(AppContext.BaseDirectory, "samples", "reverse-digits"));
        int[][] sources = Enumerable.Range(0, 8).Select(i => RandomData.Uniform(5 + i % 4, 40 + i).Select(v => 3 + (int)((v + 1) * 4.99f)).ToArray()).ToArray();
        int[][] alone = sources.Select(s => Generation.Greedy(model, [s], [s.Length], 12)[0]).ToArray();
        // The uncached path multiplies the decoder's weights by whole prefixes, which packs them: let that happen here.
        foreach (var s in sources)
            Assert.Equal(alone[Array.IndexOf(sources, s)], Generation.Greedy(model, [s], [s.Length], 12, useCache: false)[0]);
        long before = device.BytesAllocated;

        var results = new int[Threads * 3][];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = Threads }, i =>
        {
            var source = sources[i % sources.Length];
            results[i] = Generation.Greedy(model, [source], [source.Length], 12, useCache: i % 2 == 0)[0];
        });
        for (int i = 0; i < results.Length; i++)
            Assert.Equal(alone[i % sources.Length], results[i]);
        Assert.Equal(before, device.BytesAllocated);
    }

    [Fact]
    public void ThreadsMultiplyingByOneWeightShareItsPackedCopy()
    {
        using var device = ComputeDevice.Create(DeviceKind.ManagedCpu);
        const int rows = 12, inputs = 48, outputs = 64;
        var weights = RandomData.Uniform(outputs * inputs, 1);
        using var w = device.Upload(weights, outputs, inputs);
        var xs = Enumerable.Range(0, Threads).Select(t => RandomData.Uniform(rows * inputs, 100 + t)).ToArray();
        var want = xs.Select(x => ReferenceOps.MatMul(x, weights, null, 1, rows, outputs, inputs, false, true, false, false)).ToArray();
        long before = device.BytesAllocated;

        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
        {
            using var x = device.Upload(xs[t], rows, inputs);
            using var y = device.Allocate(rows, outputs);
            for (int call = 0; call < 20; call++)
            {
                MatMul.Multiply(x, w, y, transposeB: true);
                Numerics.AssertClose(want[t], y.ToArray(), what: $"thread {t}, call {call}");
            }
        });
        // One packed copy is kept with the weight, however many threads multiplied by it; it goes with the weight.
        long packed = device.BytesAllocated - before;
        Assert.InRange(packed, (long)outputs * inputs * sizeof(float), 4L * outputs * inputs * sizeof(float));
        w.Dispose();
        Assert.Equal(before - (long)outputs * inputs * sizeof(float), device.BytesAllocated);
    }
}
