using GpuAttention.Backends.Ilgpu;
using GpuAttention.Problems;
using GpuAttention.Ops;
using GpuAttention.Runtime;
using GpuAttention.Reference;

namespace GpuAttention.Tests;

[Collection(AcceleratorCollection.Name)]
public sealed class SoftmaxTests
{
    private const int Batch = 2, Heads = 3;

    /// <summary>Every mask kind, each as the op's mask and as the reference's, for x of [2, 3, lq, lk].</summary>
    public static TheoryData<string, string, int, int> Cases()
    {
        var data = new TheoryData<string, string, int, int>();
        foreach (string device in TestDevices.Names)
        foreach (string mask in MaskCases.Names)
        foreach (var (lq, lk) in new[] { (5, 5), (3, 37), (17, 1), (1, 67) })
            data.Add(device, mask, lq, lk);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesReferenceForEveryMask(string deviceName, string maskName, int lq, int lk)
    {
        var device = TestDevices.Get(deviceName);
        var x = RandomData.Uniform(Batch * Heads * lq * lk, lq * 31 + lk, 4f);
        var (mask, reference, owned) = MaskCases.Make(maskName, device, Batch, Heads, lq, lk);
        using var _ = owned;
        using var tx = device.Upload(x, Batch, Heads, lq, lk);
        using var ty = device.Allocate(Batch, Heads, lq, lk);
        Softmax.Apply(tx, ty, mask, scale: 0.7f);
        Numerics.AssertClose(ReferenceOps.Softmax(x, Batch, Heads, lq, lk, reference, 0.7), ty.ToArray(), what: maskName);
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void ReluNormaliserMatchesReference(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int lq = 6, lk = 11;
        var x = RandomData.Uniform(Batch * Heads * lq * lk, 21);
        var (mask, reference, owned) = MaskCases.Make("causal+padding", device, Batch, Heads, lq, lk);
        using var _ = owned;
        using var tx = device.Upload(x, Batch, Heads, lq, lk);
        using var ty = device.Allocate(Batch, Heads, lq, lk);
        Softmax.Apply(tx, ty, mask, scale: 2f, normalizer: ScoreNormalizer.Relu);
        Numerics.AssertClose(ReferenceOps.Softmax(x, Batch, Heads, lq, lk, reference, 2.0, reluNormalizer: true), ty.ToArray());
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void LargeMagnitudesStayFiniteAndInPlaceWorks(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int rows = 4, lk = 29;
        var x = RandomData.Uniform(rows * lk, 22, 3e4f);
        using var t = device.Upload(x, rows, lk);
        Softmax.Apply(t, t);
        var got = t.ToArray();
        Assert.All(got, v => Assert.True(float.IsFinite(v)));
        Numerics.AssertClose(ReferenceOps.Softmax(x, 1, 1, rows, lk, new ReferenceMask(), 1.0), got);
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void RowLongerThanSharedMemoryTakesTheTwoReadPath(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        // No room beside the reduction scratch on an accelerator; simply a long row on the managed backend.
        int lk = (device.Profile?.SharedMemoryBytes ?? LaunchProfile.CudaSharedMemoryLimit) / sizeof(float) + 3;
        var x = RandomData.Uniform(2 * lk, 23, 5f);
        using var tx = device.Upload(x, 2, lk);
        using var ty = device.Allocate(2, lk);
        Softmax.Apply(tx, ty, AttentionMask.KeyPadding(lk - 7), scale: 1.5f);
        var reference = new ReferenceMask { ValidLengths = [lk - 7] };
        Numerics.AssertClose(ReferenceOps.Softmax(x, 1, 1, 2, lk, reference, 1.5), ty.ToArray(), atol: 1e-6);
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void NaNPropagatesToItsRowOnly(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int rows = 3, lk = 9;
        var x = RandomData.Uniform(rows * lk, 24);
        x[lk + 4] = float.NaN;
        using var tx = device.Upload(x, rows, lk);
        using var ty = device.Allocate(rows, lk);
        Softmax.Apply(tx, ty);
        var got = ty.ToArray();
        Assert.All(got.Skip(lk).Take(lk), v => Assert.True(float.IsNaN(v)));
        Numerics.AssertClose(ReferenceOps.Softmax(x, 1, 1, rows, lk, new ReferenceMask(), 1.0), got);
    }

    [Fact]
    public void GpuLaunchProfileMatchesReference()
    {
        var device = TestDevices.Get(TestDevices.GpuProfileOnCpu);
        const int lq = 4, lk = 300;
        var x = RandomData.Uniform(Batch * Heads * lq * lk, 25, 3f);
        var (mask, reference, owned) = MaskCases.Make("window+additive", device, Batch, Heads, lq, lk);
        using var _ = owned;
        using var tx = device.Upload(x, Batch, Heads, lq, lk);
        using var ty = device.Allocate(Batch, Heads, lq, lk);
        Softmax.Apply(tx, ty, mask);
        Numerics.AssertClose(ReferenceOps.Softmax(x, Batch, Heads, lq, lk, reference, 1.0), ty.ToArray());
    }
}
