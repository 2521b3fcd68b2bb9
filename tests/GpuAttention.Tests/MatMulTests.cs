using GpuAttention.Backends.Ilgpu;
using GpuAttention.Problems;
using GpuAttention.Ops;
using GpuAttention.Reference;

namespace GpuAttention.Tests;

[Collection(AcceleratorCollection.Name)]
public sealed class MatMulTests
{
    public static TheoryData<string, int, int, int, bool, bool> Shapes()
    {
        var data = new TheoryData<string, int, int, int, bool, bool>();
        var shapes = new (int M, int N, int K)[] { (1, 1, 1), (7, 13, 5), (33, 17, 65), (64, 64, 64), (130, 3, 9), (2, 97, 31) };
        foreach (string device in TestDevices.Names)
        foreach (var (m, n, k) in shapes)
        foreach (bool transA in new[] { false, true })
        foreach (bool transB in new[] { false, true })
            data.Add(device, m, n, k, transA, transB);
        return data;
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void EveryAlgorithmMatchesReference(string deviceName, int m, int n, int k, bool transA, bool transB)
    {
        var device = TestDevices.Get(deviceName);
        var a = RandomData.Uniform(m * k, 1);
        var b = RandomData.Uniform(k * n, 2);
        var want = ReferenceOps.MatMul(a, b, null, 1, m, n, k, transA, transB, false, false);
        using var ta = device.Upload(a, transA ? [k, m] : [m, k]);
        using var tb = device.Upload(b, transB ? [n, k] : [k, n]);
        using var tc = device.Allocate(m, n);
        // Auto, and on ILGPU devices each kernel by name; the managed backend has one algorithm.
        foreach (var algorithm in device.Backend.MatMulAlgorithms.Prepend(MatMulAlgorithm.Auto))
        {
            MatMul.Multiply(ta, tb, tc, transA, transB, algorithm: algorithm);
            Numerics.AssertClose(want, tc.ToArray(), what: algorithm.ToString());
        }
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void BatchedWithAlphaBetaBiasAndActivations(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int batch = 3, m = 19, n = 23, k = 11;
        var a = RandomData.Uniform(batch * m * k, 3);
        var b = RandomData.Uniform(batch * k * n, 4);
        var c0 = RandomData.Uniform(batch * m * n, 5);
        var bias = RandomData.Uniform(n, 6);
        using var ta = device.Upload(a, batch, m, k);
        using var tb = device.Upload(b, batch, k, n);
        using var tbias = device.Upload(bias, n);
        using var tc = device.Allocate(batch, m, n);
        foreach (var (activation, name) in new[] { (Activation.None, "none"), (Activation.Relu, "relu"), (Activation.Gelu, "gelu") })
        {
            tc.CopyFrom(c0);
            MatMul.Multiply(ta, tb, tc, alpha: 0.5f, beta: -2f, bias: tbias, activation: activation);
            var want = ReferenceOps.MatMul(a, b, c0, batch, m, n, k, false, false, true, true, 0.5, -2, bias, name);
            Numerics.AssertClose(want, tc.ToArray(), what: name);
        }
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void RankTwoOperandIsSharedAcrossTheBatch(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int batch = 2, m = 5, n = 6, k = 37;
        var a = RandomData.Uniform(batch * m * k, 7);
        var w = RandomData.Uniform(n * k, 8);
        using var ta = device.Upload(a, batch, m, k);
        using var tw = device.Upload(w, n, k);
        using var tc = device.Allocate(batch, m, n);
        MatMul.Multiply(ta, tw, tc, transposeB: true);
        Numerics.AssertClose(ReferenceOps.MatMul(a, w, null, batch, m, n, k, false, true, true, false), tc.ToArray());
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void NaNInAPropagatesToItsRowOnlyAndBetaZeroNeverReadsC(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int m = 4, n = 3, k = 5;
        var a = RandomData.Uniform(m * k, 9);
        a[2 * k + 1] = float.NaN;
        var b = RandomData.Uniform(k * n, 10);
        using var ta = device.Upload(a, m, k);
        using var tb = device.Upload(b, k, n);
        using var tc = device.Upload(Enumerable.Repeat(float.NaN, m * n).ToArray(), m, n);
        MatMul.Multiply(ta, tb, tc);
        var got = tc.ToArray();
        Numerics.AssertClose(ReferenceOps.MatMul(a, b, null, 1, m, n, k, false, false, false, false), got);
        Assert.All(got.Skip(2 * n).Take(n), v => Assert.True(float.IsNaN(v)));
        Assert.All(got.Take(2 * n), v => Assert.False(float.IsNaN(v)));
    }

    [Fact]
    public void GpuLaunchProfileMatchesReference()
    {
        var device = TestDevices.Get(TestDevices.GpuProfileOnCpu);
        const int batch = 2, m = 70, n = 65, k = 40;
        var a = RandomData.Uniform(batch * m * k, 11);
        var b = RandomData.Uniform(n * k, 12);
        var bias = RandomData.Uniform(n, 13);
        using var ta = device.Upload(a, batch, m, k);
        using var tb = device.Upload(b, n, k);
        using var tbias = device.Upload(bias, n);
        using var tc = device.Allocate(batch, m, n);
        MatMul.Multiply(ta, tb, tc, transposeB: true, bias: tbias, activation: Activation.Gelu);
        Numerics.AssertClose(ReferenceOps.MatMul(a, b, null, batch, m, n, k, false, true, true, false, bias: bias, activation: "gelu"), tc.ToArray());
    }
}
