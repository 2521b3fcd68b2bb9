using GpuAttention.Reference;
using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Tests;

/// <summary>
/// F16 and BF16 storage on every backend: uploads and downloads are exact, and <see cref="Elementwise.Convert"/> rounds
/// as IEEE 754 says (nearest, ties to even). F16 is checked against .NET's own float → Half conversion; BF16 against the
/// rounding written out below in double precision. Ops that have no half-precision kernel yet say so.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class DTypeTests
{
    /// <summary>Zeros, ±∞, NaN, the edges of both formats (largest, smallest normal and subnormal, their halfway points), ties, and random values.</summary>
    private static float[] Values()
    {
        var values = new List<float>
        {
            0f, -0f, 1f, -1f, float.PositiveInfinity, float.NegativeInfinity, float.NaN, float.MaxValue, float.MinValue,
            float.Epsilon, -float.Epsilon, 1e-38f, 1.1754944e-38f,
            65504f, -65504f, 65519.996f, 65520f, 65536f, 1e5f,                       // binary16 largest, its overflow tie, beyond
            6.1035156e-5f, 6.0975552e-5f, 5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 8.940697e-8f, 1e-10f, // normal/subnormal edges and ties
            1.0009766f, 1.0004883f, 1.0014648f, 2049f, 2051f, 4097f,                 // binary16 ties (even below, odd below)
            1.00390625f, 1.01171875f, 3.3895314e38f, 3.3961776e38f, 257f, 259f,     // bfloat16 ties and its overflow edge
        };
        values.AddRange(RandomData.Uniform(200, 5, 3f));
        values.AddRange(RandomData.Uniform(100, 6, 1e-6f));
        values.AddRange(RandomData.Uniform(100, 7, 7e4f));
        return [.. values];
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void F32ToF16RoundsAsIeee(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        var values = Values();
        using var x = device.Upload(values, values.Length);
        using var y = device.Allocate(DType.F16, values.Length);
        Elementwise.Convert(x, y);
        var got = new Half[values.Length];
        y.CopyTo(got);
        for (int i = 0; i < values.Length; i++)
        {
            var want = (Half)values[i];
            Assert.True(Half.IsNaN(want) ? Half.IsNaN(got[i]) : BitConverter.HalfToUInt16Bits(want) == BitConverter.HalfToUInt16Bits(got[i]),
                $"{values[i]:R} → {got[i]} (bits {BitConverter.HalfToUInt16Bits(got[i]):X4}), want {want} (bits {BitConverter.HalfToUInt16Bits(want):X4})");
        }
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void F32ToBF16RoundsAsIeee(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        var values = Values();
        using var x = device.Upload(values, values.Length);
        using var y = device.Allocate(DType.BF16, values.Length);
        Elementwise.Convert(x, y);
        var got = new BFloat16[values.Length];
        y.CopyTo(got);
        for (int i = 0; i < values.Length; i++)
        {
            float value = (float)got[i];
            Assert.True(float.IsNaN(values[i]) ? float.IsNaN(value) : value.Equals(NearestBFloat16(values[i])),
                $"{values[i]:R} → {value:R}, want {NearestBFloat16(values[i]):R}");
        }
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void HalvesUploadDownloadAndWidenExactly(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        var values = Values();
        var halves = values.Select(v => (Half)v).ToArray();
        var bf16 = values.Select(v => (BFloat16)v).ToArray();
        using var h = device.Upload(halves, 2, values.Length / 2);
        using var b = device.Upload(bf16, values.Length);
        Assert.Equal(DType.F16, h.DType);
        Assert.Equal(DType.BF16, b.DType);

        var halvesBack = new Half[halves.Length];
        h.CopyTo(halvesBack);
        Assert.Equal(halves.Select(BitConverter.HalfToUInt16Bits), halvesBack.Select(BitConverter.HalfToUInt16Bits));
        var bf16Back = new BFloat16[bf16.Length];
        b.CopyTo(bf16Back);
        Assert.Equal(bf16, bf16Back);

        // Widening on download and on the device agree with the exact values.
        AssertSameFloats(halves.Select(v => (float)v).ToArray(), h.ToArray());
        AssertSameFloats(bf16.Select(v => BitConverter.Int32BitsToSingle(v.Bits << 16)).ToArray(), b.ToArray());
        using var wide = device.Allocate(2, values.Length / 2);
        Elementwise.Convert(h, wide);
        AssertSameFloats(halves.Select(v => (float)v).ToArray(), wide.ToArray());
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void HalfFormatsConvertIntoEachOtherThroughTheExactFloat(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        var values = Values();
        var halves = values.Select(v => (Half)v).ToArray();
        using var h = device.Upload(halves, values.Length);
        using var b = device.Allocate(DType.BF16, values.Length);
        using var back = device.Allocate(DType.F16, values.Length);
        Elementwise.Convert(h, b);
        Elementwise.Convert(b, back);
        var got = b.ToArray();
        for (int i = 0; i < values.Length; i++)
        {
            float exact = (float)halves[i];
            Assert.True(float.IsNaN(exact) ? float.IsNaN(got[i]) : got[i].Equals(NearestBFloat16(exact)), $"{exact:R} → {got[i]:R}");
        }
        var twice = back.ToArray();
        Assert.All(Enumerable.Range(0, values.Length), i =>
            Assert.True(float.IsNaN(got[i]) ? float.IsNaN(twice[i]) : twice[i].Equals((float)(Half)got[i]), $"{got[i]:R} → {twice[i]:R}"));
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void OpsWithoutHalfKernelsSaySoNamingOpDTypeAndDevice(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        using var a = device.Allocate(DType.F16, 4, 4);
        using var halfC = device.Allocate(DType.F16, 4, 4);
        using var b = device.Allocate(4, 4);
        using var c = device.Allocate(4, 4);
        using var q = device.Allocate(DType.BF16, 1, 1, 4, 8);
        using var k = device.Allocate(1, 1, 4, 8);
        using var v = device.Allocate(1, 1, 4, 8);
        using var o = device.Allocate(1, 1, 4, 8);
        foreach (var (call, op, dtype) in new (Action, string, string)[]
        {
            (() => MatMul.Multiply(b, b, halfC), "MatMul.Multiply", "F16"),
            (() => Softmax.Apply(a, c), "Softmax.Apply", "F16"),
            (() => Attention.Unfused(q, k, v, o), "Attention.Unfused", "BF16"),
            (() => Elementwise.Add(a, b, c), "Elementwise.Add", "F16"),
        })
        {
            var e = Assert.Throws<NotSupportedException>(call);
            Assert.Contains(op, e.Message);
            Assert.Contains(dtype, e.Message);
            Assert.Contains(device.ToString(), e.Message);
        }
    }

    [Fact]
    public void CopiesOfAnotherElementTypeAreRejectedAndHalvesCountTwoBytes()
    {
        var device = TestDevices.Get("cpu");
        long before = device.BytesAllocated;
        using var h = device.Allocate(DType.F16, 3, 5);
        Assert.Equal(before + 15 * 2, device.BytesAllocated);
        var e = Assert.Throws<ArgumentException>(() => h.CopyFrom(new float[15]));
        Assert.Equal("data", e.ParamName);
        Assert.Contains("F16", e.Message);
        Assert.Throws<ArgumentException>(() => h.CopyTo(new BFloat16[15]));
        Assert.Throws<ArgumentException>(() => Elementwise.Convert(h, h));
    }

    /// <summary>
    /// The bfloat16 value nearest to <paramref name="value"/>, ties to the even one, overflow to ±∞: the two bfloat16
    /// neighbours are the float truncated to its top 16 bits and the next one up in magnitude, compared in double.
    /// </summary>
    private static float NearestBFloat16(float value)
    {
        if (float.IsInfinity(value) || value == 0f)
            return value;
        int bits = BitConverter.SingleToInt32Bits(value);
        float below = BitConverter.Int32BitsToSingle(bits & unchecked((int)0xFFFF0000));
        float above = BitConverter.Int32BitsToSingle((bits & unchecked((int)0xFFFF0000)) + 0x10000);
        // Past the largest finite bfloat16 the next step up is 2^128 as if the exponent had no bound; reaching it overflows to ∞.
        double aboveValue = float.IsInfinity(above) ? Math.CopySign(Math.Pow(2, 128), value) : above;
        double toBelow = Math.Abs((double)value - below), toAbove = Math.Abs((double)value - aboveValue);
        if (toBelow != toAbove)
            return toBelow < toAbove ? below : above;
        return (BitConverter.SingleToInt32Bits(below) & 0x10000) == 0 ? below : above;
    }

    private static void AssertSameFloats(float[] want, float[] got)
    {
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++)
            Assert.True(float.IsNaN(want[i]) ? float.IsNaN(got[i]) : want[i].Equals(got[i]), $"element {i}: want {want[i]:R}, got {got[i]:R}");
    }
}
