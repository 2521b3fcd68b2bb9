using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// exp, ReLU and GELU for the managed kernels, vector and scalar, so epilogues and softmax stay inside one pass.
/// GELU uses the same erf approximation as <see cref="ActivationMath.Erf"/> (|error| &lt; 1.5e-7), so every backend
/// computes the same function.
/// </summary>
public static class CpuMath
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2High = 0.693359375f;
    private const float Ln2Low = -2.12194440e-4f;
    private const float ExpUnderflow = -87.33654f;
    private const float ExpOverflow = 88.72283f;

    /// <summary>
    /// e^x per lane, within ~2 ulp: x = n·ln2 + r with |r| ≤ ln2/2, a degree-6 polynomial for e^r (the Cephes
    /// expf coefficients) and 2ⁿ built in the exponent bits. 0 below the float range, +∞ above it, NaN kept.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var clamped = Vector256.Min(Vector256.Max(x, Vector256.Create(ExpUnderflow)), Vector256.Create(ExpOverflow));
        var n = Vector256.Floor(CpuMicroKernel.MultiplyAdd(clamped, Vector256.Create(Log2E), Vector256.Create(0.5f)));
        var r = CpuMicroKernel.MultiplyAdd(n, Vector256.Create(-Ln2High), clamped);
        r = CpuMicroKernel.MultiplyAdd(n, Vector256.Create(-Ln2Low), r);
        var p = Vector256.Create(1.9875691500e-4f);
        p = CpuMicroKernel.MultiplyAdd(p, r, Vector256.Create(1.3981999507e-3f));
        p = CpuMicroKernel.MultiplyAdd(p, r, Vector256.Create(8.3334519073e-3f));
        p = CpuMicroKernel.MultiplyAdd(p, r, Vector256.Create(4.1665795894e-2f));
        p = CpuMicroKernel.MultiplyAdd(p, r, Vector256.Create(1.6666665459e-1f));
        p = CpuMicroKernel.MultiplyAdd(p, r, Vector256.Create(5.0000001201e-1f));
        p = CpuMicroKernel.MultiplyAdd(p, r * r, r) + Vector256<float>.One;
        // 2ⁿ in two factors: n reaches 128 at the top of the range, one past the largest float exponent.
        var half = Vector256.ShiftRightArithmetic(Vector256.ConvertToInt32(n), 1);
        var scale1 = Vector256.ShiftLeft(half + Vector256.Create(127), 23).AsSingle();
        var scale2 = Vector256.ShiftLeft(Vector256.ConvertToInt32(n) - half + Vector256.Create(127), 23).AsSingle();
        var result = p * scale1 * scale2;
        result = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(ExpUnderflow)), Vector256<float>.Zero, result);
        result = Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(ExpOverflow)),
            Vector256.Create(float.PositiveInfinity), result);
        return Vector256.ConditionalSelect(Vector256.Equals(x, x), result, x);
    }

    /// <summary>The 16-lane <see cref="Exp(Vector256{float})"/>: AVX-512's own instructions where present, else two halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x) =>
        Avx512F.IsSupported ? ExpScaled(x) : Vector512.Create(Exp(x.GetLower()), Exp(x.GetUpper()));

    /// <summary>
    /// <see cref="Exp(Vector512{float})"/> with AVX-512's own rounding (vrndscaleps) and 2ⁿ scaling (vscalefps), which
    /// saturates to 0 and +∞ by itself: half the instructions, so the attention's softmax costs less beside its products.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> ExpScaled(Vector512<float> x)
    {
        var clamped = Vector512.Min(Vector512.Max(x, Vector512.Create(-104f)), Vector512.Create(ExpOverflow + 1f));
        var n = Avx512F.RoundScale(clamped * Vector512.Create(Log2E), 0);
        var r = CpuMicroKernel.MultiplyAdd(n, Vector512.Create(-Ln2High), clamped);
        r = CpuMicroKernel.MultiplyAdd(n, Vector512.Create(-Ln2Low), r);
        var p = Vector512.Create(1.9875691500e-4f);
        p = CpuMicroKernel.MultiplyAdd(p, r, Vector512.Create(1.3981999507e-3f));
        p = CpuMicroKernel.MultiplyAdd(p, r, Vector512.Create(8.3334519073e-3f));
        p = CpuMicroKernel.MultiplyAdd(p, r, Vector512.Create(4.1665795894e-2f));
        p = CpuMicroKernel.MultiplyAdd(p, r, Vector512.Create(1.6666665459e-1f));
        p = CpuMicroKernel.MultiplyAdd(p, r, Vector512.Create(5.0000001201e-1f));
        p = CpuMicroKernel.MultiplyAdd(p, r * r, r) + Vector512<float>.One;
        return Vector512.ConditionalSelect(Vector512.Equals(x, x), Avx512F.Scale(p, n), x);
    }

    /// <summary>max(0, x) per lane, NaN kept (as PyTorch and the ILGPU kernels do).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Relu(Vector256<float> x) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero) | ~Vector256.Equals(x, x), x, Vector256<float>.Zero);

    /// <summary>GELU(x) = 0.5·x·(1 + erf(x/√2)) per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Gelu(Vector256<float> x)
    {
        var scaled = x * Vector256.Create(0.70710678118654752f);
        var ax = Vector256.Abs(scaled);
        var t = Vector256<float>.One / CpuMicroKernel.MultiplyAdd(ax, Vector256.Create(0.3275911f), Vector256<float>.One);
        var poly = Vector256.Create(1.061405429f);
        poly = CpuMicroKernel.MultiplyAdd(poly, t, Vector256.Create(-1.453152027f));
        poly = CpuMicroKernel.MultiplyAdd(poly, t, Vector256.Create(1.421413741f));
        poly = CpuMicroKernel.MultiplyAdd(poly, t, Vector256.Create(-0.284496736f));
        poly = CpuMicroKernel.MultiplyAdd(poly, t, Vector256.Create(0.254829592f));
        poly *= t;
        var erfAbs = Vector256<float>.One - poly * Exp(-(ax * ax));
        var erf = Vector256.ConditionalSelect(Vector256.LessThan(scaled, Vector256<float>.Zero), -erfAbs, erfAbs);
        return Vector256.Create(0.5f) * x * (Vector256<float>.One + erf);
    }

    /// <summary>Applies an <see cref="Activation"/> value per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Activate(Vector256<float> x, int activation) => activation switch
    {
        (int)Activation.Relu => Relu(x),
        (int)Activation.Gelu => Gelu(x),
        _ => x,
    };

    /// <summary>The scalar <see cref="Activate(Vector256{float}, int)"/>.</summary>
    public static float Activate(float x, int activation) => activation switch
    {
        (int)Activation.Relu => x > 0f || float.IsNaN(x) ? x : 0f,
        (int)Activation.Gelu => Gelu(x),
        _ => x,
    };

    /// <summary>The scalar <see cref="Gelu(Vector256{float})"/>.</summary>
    public static float Gelu(float x)
    {
        float scaled = x * 0.70710678118654752f;
        float ax = MathF.Abs(scaled);
        float t = 1f / (1f + 0.3275911f * ax);
        float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
        float erfAbs = 1f - poly * MathF.Exp(-ax * ax);
        return 0.5f * x * (1f + (scaled < 0f ? -erfAbs : erfAbs));
    }
}
