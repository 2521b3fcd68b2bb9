using GpuAttention.Backends.Ilgpu;
using GpuAttention.Model;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Tests;

/// <summary>
/// Sizes at and past the edges of every argument (0, −1, int.MaxValue, products just above 2³¹ elements) are rejected
/// before anything is written, with the argument named; nothing that large is ever allocated. Windows wide enough to
/// overflow 32-bit positions mask nothing; use after dispose is an <see cref="ObjectDisposedException"/> on every backend.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class ReliabilityTests
{
    private static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "fixtures", "postln_relu");

    private static DeviceTensor Sevens(ComputeDevice device, params int[] shape) =>
        device.Upload(Enumerable.Repeat(7f, shape.Aggregate(1, (a, b) => a * b)).ToArray(), shape);

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void SplittingAtARowOffsetThatWouldWrapIsRejected(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        using var x = Sevens(device, 1, 1, 8);
        using var y = Sevens(device, 1, 2, 4, 4);
        foreach (int firstRow in new[] { int.MaxValue, int.MaxValue - 1, 4, -1 })
        {
            var e = Assert.ThrowsAny<ArgumentOutOfRangeException>(() => HeadLayout.Split(x, y, firstRow));
            Assert.Equal("firstRow", e.ParamName);
        }
        Assert.All(y.ToArray(), v => Assert.Equal(7f, v));
        HeadLayout.Split(x, y, firstRow: 3);
    }

    public static TheoryData<string, int, int> WideWindows()
    {
        var data = new TheoryData<string, int, int>();
        foreach (string device in TestDevices.Names)
        {
            data.Add(device, int.MaxValue, int.MaxValue);
            data.Add(device, int.MaxValue - 5, int.MaxValue - 5);
            data.Add(device, int.MaxValue, 0);
        }
        return data;
    }

    /// <summary>A window wider than any sequence hides nothing (and with right = 0 is exactly causal): i' ± window must not wrap.</summary>
    [Theory]
    [MemberData(nameof(WideWindows))]
    public void WindowsWiderThanAnySequenceMaskNothingBeyondTheirSide(string deviceName, int left, int right)
    {
        var device = TestDevices.Get(deviceName);
        const int batch = 1, heads = 2, lq = 7, lk = 11, d = 8;
        var qv = RandomData.Uniform(batch * heads * lq * d, 1);
        var kv = RandomData.Uniform(batch * heads * lk * d, 2);
        var vv = RandomData.Uniform(batch * heads * lk * d, 3);
        using var q = device.Upload(qv, batch, heads, lq, d);
        using var k = device.Upload(kv, batch, heads, lk, d);
        using var v = device.Upload(vv, batch, heads, lk, d);
        using var fused = device.Allocate(batch, heads, lq, d);
        using var unfused = device.Allocate(batch, heads, lq, d);
        var window = AttentionMask.SlidingWindow(left, right);
        Attention.Fused(q, k, v, fused, window);
        Attention.Unfused(q, k, v, unfused, window);
        var reference = new ReferenceMask { Right = right == 0 ? 0 : null };
        var (want, _) = ReferenceOps.Attention(qv, kv, vv, batch, heads, lq, lk, d, reference, 1 / Math.Sqrt(d));
        Numerics.AssertClose(want, fused.ToArray(), what: "fused");
        Numerics.AssertClose(want, unfused.ToArray(), what: "unfused");

        using var scores = device.Upload(RandomData.Uniform(lq * lk, 4), lq, lk);
        using var weights = device.Allocate(lq, lk);
        Softmax.Apply(scores, weights, window);
        Numerics.AssertClose(ReferenceOps.Softmax(scores.ToArray(), 1, 1, lq, lk, reference, 1), weights.ToArray(), what: "softmax");
    }

    [Fact]
    public void ShapesPastTheLargestTensorAreRejectedWithoutAllocating()
    {
        var device = TestDevices.Get("cpu");
        long before = device.BytesAllocated;
        foreach (int[] shape in new[]
        {
            new[] { int.MaxValue, int.MaxValue, int.MaxValue }, [65536, 32768], [46341, 46341], [int.MaxValue, 2],
        })
        {
            var e = Assert.Throws<ArgumentException>(() => device.Allocate(shape));
            Assert.Equal("shape", e.ParamName);
            Assert.Contains(DeviceTensor.ShapeText(shape), e.Message);
            Assert.Throws<ArgumentException>(() => device.Allocate(DType.F16, shape));
        }
        foreach (int[] shape in new[] { new[] { 0 }, [-1], [3, 0, 2], [int.MinValue] })
            Assert.Equal("shape", Assert.Throws<ArgumentException>(() => device.Allocate(shape)).ParamName);
        Assert.Equal(before, device.BytesAllocated);
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void SizeArgumentsAtTheirEdgesAreRejectedNamingThem(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        using var q = Sevens(device, 1, 1, 3, 4);
        using var k = Sevens(device, 1, 1, 5, 4);
        using var v = Sevens(device, 1, 1, 5, 4);
        using var o = Sevens(device, 1, 1, 3, 4);
        foreach (int keyLength in new[] { 0, -1, 6, int.MaxValue, int.MinValue })
            Assert.Equal("keyLength", Assert.ThrowsAny<ArgumentException>(() => Attention.Fused(q, k, v, o, keyLength: keyLength)).ParamName);
        foreach (int[] lengths in new[] { new[] { -1 }, [6], [int.MaxValue], [int.MinValue] })
            Assert.Equal("mask", Assert.ThrowsAny<ArgumentException>(() => Attention.Fused(q, k, v, o, AttentionMask.KeyPadding(lengths))).ParamName);
        Assert.Equal("left", Assert.ThrowsAny<ArgumentException>(() => AttentionMask.SlidingWindow(-1, 0)).ParamName);
        Assert.Equal("right", Assert.ThrowsAny<ArgumentException>(() => AttentionMask.SlidingWindow(0, int.MinValue)).ParamName);
        Assert.All(o.ToArray(), x => Assert.Equal(7f, x));

        using var table = Sevens(device, 5, 4);
        using var embedded = Sevens(device, 2, 4);
        foreach (int token in new[] { -1, 5, int.MaxValue, int.MinValue })
            Assert.Equal("tokens", Assert.ThrowsAny<ArgumentException>(() => Elementwise.EmbeddingGather([1, token], table, embedded)).ParamName);
        // Two rows from position p reach p + 1, which must stay an int.
        foreach (int position in new[] { -1, int.MaxValue, int.MinValue })
            Assert.Equal("firstPosition", Assert.ThrowsAny<ArgumentException>(() => Elementwise.AddPositionalEncoding(embedded, embedded, position)).ParamName);
        Elementwise.AddPositionalEncoding(embedded, embedded, int.MaxValue - 1);
        Assert.All(embedded.ToArray(), x => Assert.True(float.IsFinite(x)));
        Assert.All(table.ToArray(), x => Assert.Equal(7f, x));
    }

    [Fact]
    public void LaunchProfilesWithOverflowingSizesAreRejected()
    {
        foreach (var (profile, field) in new[]
        {
            (LaunchProfile.CpuAccelerator with { MatMulGroupX = int.MaxValue, MatMulGroupY = int.MaxValue }, "MatMulGroupX"),
            (LaunchProfile.CpuAccelerator with { MatMulTileK = int.MaxValue }, "MatMulTileK"),
            // A shape the tiled kernel is not compiled for: its sizes are compile-time constants.
            (LaunchProfile.CpuAccelerator with { MatMulGroupX = 8, MatMulGroupY = 4 }, "MatMulTileK"),
            (LaunchProfile.CpuAccelerator with { AttentionKeyTile = -1 }, "AttentionKeyTile"),
            (LaunchProfile.CpuAccelerator with { SharedMemoryBytes = 0 }, "SharedMemoryBytes"),
            (LaunchProfile.CpuAccelerator with { RowGroupSize = int.MaxValue }, "RowGroupSize"),
        })
            Assert.Equal(field, Assert.Throws<ArgumentException>(() => ComputeDevice.Create(DeviceKind.CpuAccelerator, profile)).ParamName);
    }

    [Fact]
    public void GenerationRejectsCountsThatWouldOverflow()
    {
        using var model = Transformer.Load(TestDevices.Get("cpu"), Fixture);
        int[][] source = [[3, 4, 5]];
        foreach (int count in new[] { 0, -1, int.MaxValue, model.Config.MaxLength })
        {
            Assert.Equal("maxNewTokens", Assert.ThrowsAny<ArgumentException>(() => Generation.Greedy(model, source, [3], count)).ParamName);
            Assert.Equal("maxNewTokens", Assert.ThrowsAny<ArgumentException>(() => Generation.Beam(model, source[0], 2, count)).ParamName);
        }
        foreach (int width in new[] { 0, -1, int.MaxValue, model.MaxBatch + 1 })
            Assert.Equal("beamWidth", Assert.ThrowsAny<ArgumentException>(() => Generation.Beam(model, source[0], width, 3)).ParamName);
        foreach (int capacity in new[] { 0, -1, int.MinValue })
        {
            using var memory = model.Encode(source, [3]);
            Assert.Equal("capacity", Assert.ThrowsAny<ArgumentException>(() => model.CreateCaches(memory, capacity)).ParamName);
        }
        // The largest count that fits is accepted.
        Assert.InRange(Generation.Greedy(model, source, [3], model.Config.MaxLength - 1)[0].Length, 1, model.Config.MaxLength - 1);
    }

    [Fact]
    public void HugeLayerCountsEndInAValidationErrorNotOutOfMemory()
    {
        string folder = Directory.CreateTempSubdirectory("huge-layers").FullName;
        try
        {
            foreach (string file in Directory.GetFiles(Fixture))
                File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
            string config = Path.Combine(folder, "config.json");
            File.WriteAllText(config, File.ReadAllText(config).Replace("\"encoder_layers\": 2", "\"encoder_layers\": 2147483647"));
            var e = Assert.Throws<InvalidDataException>(() => Transformer.Load(TestDevices.Get("cpu"), folder));
            Assert.Contains("encoder.layers.2.", e.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void UseAfterDisposeIsObjectDisposedOnEveryBackend(string deviceName)
    {
        var kind = TestDevices.Get(deviceName).Kind;
        var device = ComputeDevice.Create(kind);
        var tensor = device.Upload([1f, 2f, 3f], 3);
        var other = device.Allocate(3);
        var gone = device.Allocate(3);
        gone.Dispose();
        Assert.Throws<ObjectDisposedException>(() => Elementwise.Add(tensor, gone, other));
        Assert.Throws<ObjectDisposedException>(() => gone.ToArray());
        device.Dispose();
        Assert.Throws<ObjectDisposedException>(() => tensor.ToArray());
        Assert.Throws<ObjectDisposedException>(() => tensor.CopyFrom([4f, 5f, 6f]));
        Assert.Throws<ObjectDisposedException>(() => Elementwise.Add(tensor, tensor, other));
        Assert.Throws<ObjectDisposedException>(() => device.Allocate(3));
        Assert.Throws<ObjectDisposedException>(() => device.Synchronize());
        tensor.Dispose();
        other.Dispose();
    }

    [Fact]
    public void OperandsOfTwoDevicesOfOneKindAreToldApart()
    {
        using var first = ComputeDevice.Create(DeviceKind.ManagedCpu);
        using var second = ComputeDevice.Create(DeviceKind.ManagedCpu);
        using var a = first.Allocate(2, 2);
        using var b = second.Allocate(2, 2);
        using var c = first.Allocate(2, 2);
        var e = Assert.Throws<ArgumentException>(() => MatMul.Multiply(a, b, c));
        Assert.Equal("b", e.ParamName);
        Assert.Contains($"#{second.Ordinal}", e.Message);
        Assert.Contains($"#{first.Ordinal}", e.Message);
    }
}
