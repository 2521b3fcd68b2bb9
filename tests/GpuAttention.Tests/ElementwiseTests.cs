using GpuAttention.Problems;
using GpuAttention.Ops;
using GpuAttention.Reference;

namespace GpuAttention.Tests;

[Collection(AcceleratorCollection.Name)]
public sealed class ElementwiseTests
{
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void AddScaleReluGeluMatchReference(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        var a = RandomData.Uniform(101, 51, 4f);
        var b = RandomData.Uniform(101, 52);
        a[7] = float.NaN;
        using var ta = device.Upload(a, 101);
        using var tb = device.Upload(b, 101);
        using var ty = device.Allocate(101);

        Elementwise.Add(ta, tb, ty);
        Numerics.AssertClose(a.Zip(b, (x, y) => (double)x + y).ToArray(), ty.ToArray(), what: "add");
        Elementwise.Scale(ta, -0.25f, ty);
        Numerics.AssertClose(a.Select(x => -0.25 * x).ToArray(), ty.ToArray(), what: "scale");
        Elementwise.Relu(ta, ty);
        Numerics.AssertClose(a.Select(x => ReferenceOps.Relu(x)).ToArray(), ty.ToArray(), what: "relu");
        Elementwise.Gelu(ta, ty);
        Numerics.AssertClose(a.Select(x => ReferenceOps.Gelu(x)).ToArray(), ty.ToArray(), what: "gelu");
        Elementwise.ScaleActivate(ta, 4f, Activation.GeluTanh, ty);
        Numerics.AssertClose(a.Select(x => ReferenceOps.Activate(4.0 * x, "gelu_tanh")).ToArray(), ty.ToArray(), what: "gelu_tanh");
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void EmbeddingGatherScalesRows(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int vocab = 11, width = 6;
        var table = RandomData.Uniform(vocab * width, 53);
        int[] tokens = [3, 0, 10, 3, 7, 1];
        using var tt = device.Upload(table, vocab, width);
        using var ty = device.Allocate(2, 3, width);
        Elementwise.EmbeddingGather(tokens, tt, ty, MathF.Sqrt(width));
        var want = tokens.SelectMany(t => Enumerable.Range(0, width).Select(c => table[t * width + c] * Math.Sqrt(width))).ToArray();
        Numerics.AssertClose(want, ty.ToArray());
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void PositionalEncodingMatchesTheFormula(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int batch = 2, length = 9, width = 10, first = 3000;
        var x = RandomData.Uniform(batch * length * width, 54);
        using var tx = device.Upload(x, batch, length, width);
        using var ty = device.Allocate(batch, length, width);
        Elementwise.AddPositionalEncoding(tx, ty, first);
        var want = new double[x.Length];
        for (int b = 0; b < batch; b++)
        for (int l = 0; l < length; l++)
        for (int c = 0; c < width; c++)
        {
            int at = (b * length + l) * width + c;
            want[at] = x[at] + ReferenceOps.PositionalEncoding(first + l, c, width);
        }
        Numerics.AssertClose(want, ty.ToArray());
    }
}
