using GpuAttention.Backends.Ilgpu;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Tests;

[Collection(AcceleratorCollection.Name)]
public sealed class LayerNormTests
{
    public static TheoryData<string, int, int, bool> Cases()
    {
        var data = new TheoryData<string, int, int, bool>();
        foreach (string device in TestDevices.Names)
        foreach (var (rows, width) in new[] { (1, 1), (3, 7), (5, 64), (2, 301) })
        foreach (bool residual in new[] { false, true })
            data.Add(device, rows, width, residual);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesReference(string deviceName, int rows, int width, bool withResidual)
    {
        var device = TestDevices.Get(deviceName);
        var x = RandomData.Uniform(rows * width, 41, 3f);
        var r = RandomData.Uniform(rows * width, 42);
        var gain = RandomData.Uniform(width, 43);
        var bias = RandomData.Uniform(width, 44);
        using var tx = device.Upload(x, rows, width);
        using var tr = device.Upload(r, rows, width);
        using var tg = device.Upload(gain, width);
        using var tb = device.Upload(bias, width);
        using var ty = device.Allocate(rows, width);
        LayerNorm.Apply(tx, tg, tb, ty, 1e-5f, withResidual ? tr : null);
        Numerics.AssertClose(ReferenceOps.LayerNorm(x, withResidual ? r : null, gain, bias, width, 1e-5), ty.ToArray());
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void LargeOffsetDoesNotCancelAndInPlaceWorks(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int rows = 2, width = 33;
        var x = RandomData.Uniform(rows * width, 45).Select(v => 1e4f + v).ToArray();
        var gain = Enumerable.Repeat(1f, width).ToArray();
        var bias = new float[width];
        using var t = device.Upload(x, rows, width);
        using var tg = device.Upload(gain, width);
        using var tb = device.Upload(bias, width);
        LayerNorm.Apply(t, tg, tb, t, 1e-5f);
        Numerics.AssertClose(ReferenceOps.LayerNorm(x, null, gain, bias, width, 1e-5), t.ToArray());
    }

    [Fact]
    public void GpuLaunchProfileMatchesReference()
    {
        var device = TestDevices.Get(TestDevices.GpuProfileOnCpu);
        const int rows = 3, width = 515;
        var x = RandomData.Uniform(rows * width, 46);
        var r = RandomData.Uniform(rows * width, 47);
        var gain = RandomData.Uniform(width, 48);
        var bias = RandomData.Uniform(width, 49);
        using var tx = device.Upload(x, 1, rows, width);
        using var tr = device.Upload(r, 1, rows, width);
        using var tg = device.Upload(gain, width);
        using var tb = device.Upload(bias, width);
        using var ty = device.Allocate(1, rows, width);
        LayerNorm.Apply(tx, tg, tb, ty, 1e-6f, tr);
        Numerics.AssertClose(ReferenceOps.LayerNorm(x, r, gain, bias, width, 1e-6), ty.ToArray());
    }

    /// <summary>
    /// Normalize.L2 against a double-precision F.normalize: widths 1, 7, 384 and 301 (partial group strides), a zero row
    /// (stays zeros), a row of tiny values (below ε it is divided by ε, as PyTorch does), in place and into another tensor.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void L2NormalizeMatchesReference(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        foreach (int width in new[] { 1, 7, 384, 301 })
        {
            const int rows = 4;
            var x = RandomData.Uniform(rows * width, 45, 3f);
            Array.Clear(x, width, width);
            for (int j = 0; j < width; j++)
                x[2 * width + j] *= 1e-14f;
            var want = new double[x.Length];
            for (int r = 0; r < rows; r++)
            {
                double norm = Math.Sqrt(Enumerable.Range(0, width).Sum(j => (double)x[r * width + j] * x[r * width + j]));
                for (int j = 0; j < width; j++)
                    want[r * width + j] = x[r * width + j] / Math.Max(norm, 1e-12);
            }
            using var tx = device.Upload(x, 2, 2, width);
            using var ty = device.Allocate(2, 2, width);
            Normalize.L2(tx, ty);
            Numerics.AssertClose(want, ty.ToArray(), atol: 1e-6, rtol: 1e-5, what: $"width {width}");
            Normalize.L2(tx, tx);
            Numerics.AssertClose(want, tx.ToArray(), atol: 1e-6, rtol: 1e-5, what: $"width {width}, in place");
        }
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void L2NormalizeRejectsBadInputNamingTheArgument(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        using var x = device.Upload([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        using var y = device.Upload([7f, 7f, 7f], 1, 3);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Normalize.L2(x, y)).ParamName);
        using var good = device.Allocate(2, 3);
        Assert.Equal("epsilon", Assert.Throws<ArgumentOutOfRangeException>(() => Normalize.L2(x, good, 0f)).ParamName);
        Assert.All(y.ToArray(), v => Assert.Equal(7f, v));
    }

    /// <summary>
    /// LayerNorm.EmbeddingSum against a double-precision sum and norm of the three table rows: widths 1, 7, 301 and 384
    /// (partial group strides), repeated ids, the last row of every table, a large common offset, ε = 1e-12 (BERT's).
    /// </summary>
    [Theory]
    [MemberData(nameof(EmbeddingCases))]
    public void EmbeddingSumMatchesReference(string deviceName, int width)
    {
        var device = TestDevices.Get(deviceName);
        const int vocab = 11, positionCount = 9, typeCount = 2;
        var words = RandomData.Uniform(vocab * width, 48).Select(v => 100f + v).ToArray();
        var positions = RandomData.Uniform(positionCount * width, 49);
        var types = RandomData.Uniform(typeCount * width, 50);
        var gain = RandomData.Uniform(width, 51);
        var bias = RandomData.Uniform(width, 52);
        int[] wordIds = [3, 10, 3, 0, 7], positionIds = [0, 1, 2, 8, 0], typeIds = [0, 1, 1, 0, 1];
        using var tw = device.Upload(words, vocab, width);
        using var tp = device.Upload(positions, positionCount, width);
        using var tt = device.Upload(types, typeCount, width);
        using var tg = device.Upload(gain, width);
        using var tb = device.Upload(bias, width);
        using var ty = device.Allocate(1, wordIds.Length, width);
        LayerNorm.EmbeddingSum(wordIds, tw, positionIds, tp, typeIds, tt, tg, tb, ty);
        Numerics.AssertClose(ReferenceOps.EmbeddingLayerNorm(words, positions, types, wordIds, positionIds, typeIds, gain, bias, width, 1e-12),
            ty.ToArray());
    }

    public static TheoryData<string, int> EmbeddingCases()
    {
        var data = new TheoryData<string, int>();
        foreach (string device in TestDevices.Names.Append(TestDevices.GpuProfileOnCpu))
        foreach (int width in new[] { 1, 7, 301, 384 })
            data.Add(device, width);
        return data;
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void EmbeddingSumRejectsBadInputNamingTheArgumentAndLeavesTheOutput(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int width = 4;
        using var words = device.Upload(RandomData.Uniform(5 * width, 53), 5, width);
        using var positions = device.Upload(RandomData.Uniform(3 * width, 54), 3, width);
        using var types = device.Upload(RandomData.Uniform(2 * width, 55), 2, width);
        using var narrow = device.Upload(RandomData.Uniform(2 * (width + 1), 56), 2, width + 1);
        using var gain = device.Upload(RandomData.Uniform(width, 57), width);
        using var bias = device.Upload(RandomData.Uniform(width, 58), width);
        var before = Enumerable.Repeat(7f, 2 * width).ToArray();
        using var y = device.Upload(before, 2, width);
        void Call(int[] wordIds, int[] positionIds, int[] typeIds, DeviceTensor? typeTable = null, DeviceTensor? output = null) =>
            LayerNorm.EmbeddingSum(wordIds, words, positionIds, positions, typeIds, typeTable ?? types, gain, bias, output ?? y);

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => Call([0, 5], [0, 1], [0, 0]));
        Assert.Equal("wordIds", error.ParamName);
        Assert.Equal("positionIds", Assert.Throws<ArgumentOutOfRangeException>(() => Call([0, 1], [0, 3], [0, 0])).ParamName);
        Assert.Equal("typeIds", Assert.Throws<ArgumentOutOfRangeException>(() => Call([0, 1], [0, 1], [-1, 0])).ParamName);
        Assert.Equal("typeIds", Assert.Throws<ArgumentException>(() => Call([0, 1], [0, 1], [0])).ParamName);
        Assert.Equal("types", Assert.Throws<ArgumentException>(() => Call([0, 1], [0, 1], [0, 0], narrow)).ParamName);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => Call([0, 1, 2], [0, 1, 2], [0, 0, 0])).ParamName);
        Assert.Equal("wordIds", Assert.Throws<ArgumentException>(() => Call([], [], [])).ParamName);
        Assert.Equal(before, y.ToArray());
    }
}
