using GpuAttention.Problems;
using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>
/// The activations as scalar functions: used inside the ILGPU kernels, and by the managed kernels for the elements their
/// vectors do not cover (XMath runs as plain .NET math off the GPU).
/// </summary>
public static class ActivationMath
{
    /// <summary>Applies <paramref name="activation"/> (an <see cref="Activation"/> value) to <paramref name="x"/>.</summary>
    public static float Apply(float x, int activation) => activation switch
    {
        (int)Activation.Relu => Relu(x),
        (int)Activation.Gelu => Gelu(x),
        (int)Activation.GeluTanh => GeluTanh(x),
        _ => x,
    };

    /// <summary>max(0, x), keeping NaN as NaN (as PyTorch does): a comparison with NaN is false, so NaN takes the
    /// <c>x</c> branch. (<c>x &gt; 0 || IsNaN(x)</c> said the same but lost the NaN on PoCL once ILGPU's O2 passes had
    /// folded it.)</summary>
    public static float Relu(float x) => x <= 0f ? 0f : x;

    /// <summary>
    /// tanh(x) = 1 − 2/(e^(2x) + 1): saturates to ±1 without overflow (e^(2x) = +∞ gives 1, 0 gives −1), keeps NaN, and
    /// loses only absolute accuracy (~1e-7) near 0, where the additive score sums it with weights anyway.
    /// </summary>
    public static float Tanh(float x) => 1f - 2f / (XMath.Exp(2f * x) + 1f);

    /// <summary>GELU(x) = x·Φ(x) = 0.5·x·(1 + erf(x/√2)).</summary>
    public static float Gelu(float x) => 0.5f * x * (1f + Erf(x * 0.70710678118654752f));

    /// <summary>0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))), with <see cref="Tanh"/>.</summary>
    public static float GeluTanh(float x) => 0.5f * x * (1f + Tanh(0.79788456080286536f * (x + 0.044715f * x * x * x)));

    /// <summary>erf through <see cref="Polynomials.ErfTail{T, TArithmetic}"/>.</summary>
    public static float Erf(float x)
    {
        float ax = XMath.Abs(x);
        float tail = Polynomials.ErfTail<float, FloatArithmetic>(1f / (1f + Polynomials.ErfT * ax));
        float erf = 1f - tail * XMath.Exp(-ax * ax);
        return x < 0f ? -erf : erf;
    }
}
