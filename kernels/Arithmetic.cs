using System.Runtime.CompilerServices;

namespace GpuAttention.Kernels;

/// <summary>
/// Arithmetic on one lane type — a float in an ILGPU kernel, a Vector256 or Vector512 of floats in the managed kernels —
/// so that each polynomial below is written once and specialised for every lane type at compile time (the lane types
/// are structs, so the JIT and ILGPU both inline the calls).
/// </summary>
public interface IArithmetic<T> where T : struct
{
    /// <summary>The constant in every lane.</summary>
    T Constant(float value);
    /// <summary>a + b.</summary>
    T Add(T a, T b);
    /// <summary>a·b.</summary>
    T Multiply(T a, T b);
    /// <summary>a·b + c, fused where the hardware has it.</summary>
    T MultiplyAdd(T a, T b, T c);
}

/// <summary>Scalar float arithmetic: what the ILGPU kernels (and the managed scalar paths) use.</summary>
public readonly struct FloatArithmetic : IArithmetic<float>
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Constant(float value) => value;
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Add(float a, float b) => a + b;
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Multiply(float a, float b) => a * b;
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float MultiplyAdd(float a, float b, float c) => a * b + c;
}

/// <summary>The polynomial approximations every backend shares; their coefficients appear here and nowhere else.</summary>
public static class Polynomials
{
    /// <summary>The argument scale of <see cref="ErfTail{T, TArithmetic}"/>: t = 1 / (1 + ErfT·|x|).</summary>
    public const float ErfT = 0.3275911f;

    /// <summary>
    /// t·P(t) of Abramowitz and Stegun 7.1.26, erf(|x|) = 1 − t·P(t)·e^(−x²) with t = 1 / (1 + <see cref="ErfT"/>·|x|),
    /// |error| &lt; 1.5e-7: no backend has an erf intrinsic, and this error is far inside the fp32 tolerance.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T ErfTail<T, TArithmetic>(T t) where T : struct where TArithmetic : struct, IArithmetic<T>
    {
        var m = default(TArithmetic);
        var p = m.MultiplyAdd(m.Constant(1.061405429f), t, m.Constant(-1.453152027f));
        p = m.MultiplyAdd(p, t, m.Constant(1.421413741f));
        p = m.MultiplyAdd(p, t, m.Constant(-0.284496736f));
        p = m.MultiplyAdd(p, t, m.Constant(0.254829592f));
        return m.Multiply(p, t);
    }

    /// <summary>
    /// e^r for |r| ≤ ln2/2, within ~1 ulp: the degree-6 polynomial of Cephes' expf, 1 + r + r²·P(r). The caller reduces
    /// x = n·ln2 + r and scales by 2ⁿ.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T ExpReduced<T, TArithmetic>(T r) where T : struct where TArithmetic : struct, IArithmetic<T>
    {
        var m = default(TArithmetic);
        var p = m.MultiplyAdd(m.Constant(1.9875691500e-4f), r, m.Constant(1.3981999507e-3f));
        p = m.MultiplyAdd(p, r, m.Constant(8.3334519073e-3f));
        p = m.MultiplyAdd(p, r, m.Constant(4.1665795894e-2f));
        p = m.MultiplyAdd(p, r, m.Constant(1.6666665459e-1f));
        p = m.MultiplyAdd(p, r, m.Constant(5.0000001201e-1f));
        return m.Add(m.MultiplyAdd(p, m.Multiply(r, r), r), m.Constant(1f));
    }
}
