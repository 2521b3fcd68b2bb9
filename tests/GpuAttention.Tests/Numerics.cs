using Xunit.Sdk;

namespace GpuAttention.Tests;

/// <summary>The fp32 tolerance README.md states, |got − want| ≤ atol + rtol·|want|.</summary>
public static class Numerics
{
    public static void AssertClose(double[] want, float[] got, double atol = 1e-4, double rtol = 1e-4, string what = "")
    {
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < want.Length; i++)
        {
            double w = want[i], g = got[i];
            bool ok = double.IsNaN(w) ? double.IsNaN(g)
                : double.IsInfinity(w) ? w == g
                : Math.Abs(g - w) <= atol + rtol * Math.Abs(w);
            if (!ok)
                throw new XunitException($"{what} element {i}: want {w:R}, got {g:R} (|diff| {Math.Abs(g - w):E2}, allowed {atol + rtol * Math.Abs(w):E2})");
        }
    }

}

/// <summary>Test inputs for the 16-bit kernels: exact bf16 or f16 values and their widening, independent of the library's conversions.</summary>
public static class SixteenBit
{
    /// <summary>Each value as the format's bits: .NET's Half for f16; for bf16 the float's top 16 bits (truncation: the values only need to be exact bf16 numbers).</summary>
    public static ushort[] Bits(float[] values, bool bf16) =>
        values.Select(v => bf16 ? (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16) : BitConverter.HalfToUInt16Bits((System.Half)v)).ToArray();

    /// <summary>The exact value of a bf16 or f16 element.</summary>
    public static double Value(ushort bits, bool bf16) =>
        bf16 ? BitConverter.UInt32BitsToSingle((uint)bits << 16) : (double)BitConverter.UInt16BitsToHalf(bits);
}
