using GpuAttention.Backends.Ilgpu;
using GpuAttention.Problems;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

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
        foreach (var (activation, name) in new[] { (Activation.None, "none"), (Activation.Relu, "relu"), (Activation.Gelu, "gelu"), (Activation.GeluTanh, "gelu_tanh") })
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

    public static TheoryData<string, string, bool, bool> SixteenBitCases()
    {
        var data = new TheoryData<string, string, bool, bool>();
        foreach (string device in TestDevices.Names)
        foreach (string format in new[] { "bf16", "f16" })
        foreach (var (transA, transB) in new[] { (false, false), (false, true), (true, false) })
            data.Add(device, format, transA, transB);
        return data;
    }

    /// <summary>
    /// 16-bit A and B, fp32 accumulation into F32 C, on every device (tensor cores on CUDA, widening to F32 elsewhere): a batch of 2 over a shared B, odd sizes, α, β, bias and ReLU, against a double-precision product of the
    /// same 16-bit values.
    /// </summary>
    [Theory]
    [MemberData(nameof(SixteenBitCases))]
    public void SixteenBitOperandsAccumulateInFp32(string deviceName, string format, bool transA, bool transB)
    {
        const int batch = 2, m = 37, n = 23, k = 41;
        bool bf16 = format == "bf16";
        var device = TestDevices.Get(deviceName);
        ushort[] aBits = SixteenBit.Bits(RandomData.Uniform(batch * m * k, 61, 2f), bf16), bBits = SixteenBit.Bits(RandomData.Uniform(k * n, 62, 2f), bf16);
        float[] c0 = RandomData.Uniform(batch * m * n, 63), bias = RandomData.Uniform(n, 64);
        int[] aShape = transA ? [batch, k, m] : [batch, m, k], bShape = transB ? [n, k] : [k, n];
        using var a = Upload(device, aBits, bf16, aShape);
        using var b = Upload(device, bBits, bf16, bShape);
        using var c = device.Upload(c0, batch, m, n);
        using var tbias = device.Upload(bias, n);
        MatMul.Multiply(a, b, c, transA, transB, alpha: 0.5f, beta: 0.25f, bias: tbias, activation: Activation.Relu);

        float[] got = c.ToArray();
        for (int t = 0; t < batch; t++)
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double dot = 0, magnitude = 0;
            for (int q = 0; q < k; q++)
            {
                double product = SixteenBit.Value(aBits[t * m * k + (transA ? q * m + i : i * k + q)], bf16)
                    * SixteenBit.Value(bBits[transB ? j * k + q : q * n + j], bf16);
                dot += product;
                magnitude += Math.Abs(product);
            }
            int at = (t * m + i) * n + j;
            double want = Math.Max(0, 0.5 * dot + 0.25 * c0[at] + bias[j]);
            double tolerance = 1e-5 * (0.5 * magnitude + Math.Abs(0.25 * c0[at]) + Math.Abs(bias[j])) + 1e-6;
            Assert.True(Math.Abs(got[at] - want) <= tolerance, $"[{t}, {i}, {j}]: got {got[at]}, want {want} (tolerance {tolerance:E2})");
        }
    }

    /// <summary>
    /// A C in the operands' 16-bit dtype: β reads its 16-bit values exactly, the epilogue runs in fp32 and the result is
    /// rounded once to nearest-even — within the fp32 product's tolerance plus half an ulp of the format (u = 2⁻⁸ for
    /// bf16, 2⁻¹¹ for f16, relative); a truncating conversion would miss that by up to an ulp.
    /// </summary>
    [Theory]
    [MemberData(nameof(SixteenBitOutputCases))]
    public void SixteenBitResultIsRoundedOnceIntoC(string deviceName, string format, bool transA)
    {
        const int batch = 2, m = 37, n = 23, k = 41;
        bool bf16 = format == "bf16";
        var device = TestDevices.Get(deviceName);
        ushort[] aBits = SixteenBit.Bits(RandomData.Uniform(batch * m * k, 65, 2f), bf16), bBits = SixteenBit.Bits(RandomData.Uniform(n * k, 66, 2f), bf16);
        ushort[] cBits = SixteenBit.Bits(RandomData.Uniform(batch * m * n, 67, 4f), bf16);
        float[] bias = RandomData.Uniform(n, 68);
        using var a = Upload(device, aBits, bf16, transA ? [batch, k, m] : [batch, m, k]);
        using var b = Upload(device, bBits, bf16, [n, k]);
        using var c = Upload(device, cBits, bf16, [batch, m, n]);
        using var tbias = device.Upload(bias, n);
        MatMul.Multiply(a, b, c, transA, transposeB: true, alpha: 0.5f, beta: 0.25f, bias: tbias, activation: Activation.Gelu);

        Assert.Equal(bf16 ? DType.BF16 : DType.F16, c.DType);
        float[] got = c.ToArray();
        double u = bf16 ? Math.Pow(2, -8) : Math.Pow(2, -11);
        for (int t = 0; t < batch; t++)
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double dot = 0, magnitude = 0;
            for (int q = 0; q < k; q++)
            {
                double product = SixteenBit.Value(aBits[t * m * k + (transA ? q * m + i : i * k + q)], bf16) * SixteenBit.Value(bBits[j * k + q], bf16);
                dot += product;
                magnitude += Math.Abs(product);
            }
            int at = (t * m + i) * n + j;
            double old = SixteenBit.Value(cBits[at], bf16);
            double want = ReferenceOps.Gelu(0.5 * dot + 0.25 * old + bias[j]);
            double tolerance = 1e-5 * (0.5 * magnitude + Math.Abs(0.25 * old) + Math.Abs(bias[j])) + u * Math.Abs(want) + 1e-6;
            Assert.True(Math.Abs(got[at] - want) <= tolerance, $"[{t}, {i}, {j}]: got {got[at]}, want {want} (tolerance {tolerance:E2})");
        }
    }

    public static TheoryData<string, string, bool> SixteenBitOutputCases()
    {
        var data = new TheoryData<string, string, bool>();
        foreach (string device in TestDevices.Names)
        {
            data.Add(device, "bf16", false);
            data.Add(device, "f16", true);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void SixteenBitOperandsMustShareADTypeAndTakeAuto(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        using var f16 = device.Allocate(DType.F16, 4, 4);
        using var bf16 = device.Allocate(DType.BF16, 4, 4);
        using var f32 = device.Allocate(4, 4);
        using var c = device.Allocate(4, 4);
        var mixed = Assert.Throws<ArgumentException>(() => MatMul.Multiply(f16, bf16, c));
        Assert.Equal("b", mixed.ParamName);
        Assert.Contains("F16", mixed.Message);
        Assert.Contains("BF16", mixed.Message);
        Assert.Equal("b", Assert.Throws<ArgumentException>(() => MatMul.Multiply(f16, f32, c)).ParamName);
        var otherFormat = Assert.Throws<ArgumentException>(() => MatMul.Multiply(bf16, bf16, f16));
        Assert.Equal("c", otherFormat.ParamName);
        Assert.Contains("F32 or BF16", otherFormat.Message);
        Assert.Contains("'c'", Assert.Throws<NotSupportedException>(() => MatMul.Multiply(f32, f32, bf16)).Message);
        if (device.Backend.MatMulAlgorithms.Count > 0)
            Assert.Equal("algorithm", Assert.Throws<ArgumentException>(() => MatMul.Multiply(f16, f16, c, algorithm: device.Backend.MatMulAlgorithms[0])).ParamName);
    }

    private static DeviceTensor Upload(ComputeDevice device, ushort[] bits, bool bf16, int[] shape) => bf16
        ? device.Upload(bits.Select(x => new BFloat16(x)).ToArray(), shape)
        : device.Upload(bits.Select(BitConverter.UInt16BitsToHalf).ToArray(), shape);
}
