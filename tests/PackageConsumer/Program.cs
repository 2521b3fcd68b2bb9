// Uses the GpuAttention package the way an application does: multiply, fused attention and the sample model, on the
// managed CPU backend and on ILGPU's CPU accelerator (which proves the ILGPU dependencies arrived with the package).
// Every expected value is worked out here by hand, not taken from the library. Exits 1 on the first disagreement.
using GpuAttention.Model;
using GpuAttention.Ops;
using GpuAttention.Runtime;

if (args.Length != 1)
{
    Console.Error.WriteLine("usage: PackageConsumer <samples/reverse-digits directory>");
    return 2;
}

foreach (var kind in new[] { DeviceKind.ManagedCpu, DeviceKind.CpuAccelerator })
{
    using var device = ComputeDevice.Create(kind);

    // [[1, 2, 3], [4, 5, 6]] · [[1, 0], [0, 1], [1, 1]] = [[4, 5], [10, 11]]
    using var a = device.Upload([1f, 2, 3, 4, 5, 6], 2, 3);
    using var b = device.Upload([1f, 0, 0, 1, 1, 1], 3, 2);
    using var c = device.Allocate(2, 2);
    MatMul.Multiply(a, b, c);
    Expect(kind, "MatMul.Multiply", c.ToArray(), [4f, 5, 10, 11]);

    // Every key equal, so every query weighs the three values equally: each output row is their mean.
    using var q = device.Upload([1f, 0, 0, 1], 1, 1, 2, 2);
    using var k = device.Upload([1f, 1, 1, 1, 1, 1], 1, 1, 3, 2);
    using var v = device.Upload([3f, 0, 6, 3, 0, 9], 1, 1, 3, 2);
    using var o = device.Allocate(1, 1, 2, 2);
    Attention.Fused(q, k, v, o, AttentionMask.None);
    Expect(kind, "Attention.Fused", o.ToArray(), [3f, 4, 3, 4]);

    // The sample model reverses digits: token of digit d is d + 3, <eos> is 2.
    using var model = Transformer.Load(device, args[0]);
    int[] source = [4, 5, 6, 7, 8, 9, 10, 11];
    int[] reversed = [.. source.Reverse(), 2];
    var generated = Generation.Greedy(model, [source], [source.Length], maxNewTokens: reversed.Length);
    Expect(kind, "Transformer.Load + Generation.Greedy", [.. generated[0].Select(t => (float)t)], [.. reversed.Select(t => (float)t)]);

    Console.WriteLine($"{kind}: matmul, fused attention and the sample model agree");
}
return 0;

static void Expect(DeviceKind kind, string what, float[] got, float[] want)
{
    bool same = got.Length == want.Length && got.Zip(want).All(p => Math.Abs(p.First - p.Second) <= 1e-5f * (1 + Math.Abs(p.Second)));
    if (!same)
    {
        Console.Error.WriteLine($"{kind}: {what} gave [{string.Join(", ", got)}], expected [{string.Join(", ", want)}]");
        Environment.Exit(1);
    }
}
