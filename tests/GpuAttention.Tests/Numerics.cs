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
