using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>Activation applied by the fused epilogues (matmul) and the elementwise kernels.</summary>
public enum Activation
{
    /// <summary>Identity.</summary>
    None = 0,
    /// <summary>max(0, x).</summary>
    Relu = 1,
    /// <summary>The exact (erf-based) GELU, as PyTorch's default <c>nn.GELU()</c>.</summary>
    Gelu = 2,
}

/// <summary>Scalar activation functions usable inside kernels.</summary>
public static class ActivationMath
{
    /// <summary>Applies <paramref name="activation"/> (an <see cref="Activation"/> value) to <paramref name="x"/>.</summary>
    public static float Apply(float x, int activation) => activation switch
    {
        (int)Activation.Relu => Relu(x),
        (int)Activation.Gelu => Gelu(x),
        _ => x,
    };

    /// <summary>max(0, x), keeping NaN as NaN (as PyTorch does).</summary>
    public static float Relu(float x) => x > 0f || XMath.IsNaN(x) ? x : 0f;

    /// <summary>GELU(x) = x·Φ(x) = 0.5·x·(1 + erf(x/√2)).</summary>
    public static float Gelu(float x) => 0.5f * x * (1f + Erf(x * 0.70710678118654752f));

    /// <summary>
    /// erf with absolute error below 1.5e-7 (Abramowitz and Stegun 7.1.26): no backend offers an
    /// erf intrinsic, and this error is far inside the fp32 test tolerance.
    /// </summary>
    public static float Erf(float x)
    {
        float sign = x < 0f ? -1f : 1f;
        float ax = x < 0f ? -x : x;
        float t = 1f / (1f + 0.3275911f * ax);
        float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
        return sign * (1f - poly * XMath.Exp(-ax * ax));
    }
}
