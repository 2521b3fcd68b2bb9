using GpuAttention.Backends.Ilgpu;
using GpuAttention.Ops;
using GpuAttention.Reference;

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
}
