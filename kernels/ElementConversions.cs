using ILGPU;

namespace GpuAttention.Kernels;

/// <summary>One element type to another; a struct per pair, so a kernel is specialised for each at compile time.</summary>
public interface IElementConversion<TFrom, TTo> where TFrom : unmanaged where TTo : unmanaged
{
    /// <summary>The converted element.</summary>
    TTo Convert(TFrom value);
}

/// <summary>
/// IEEE binary16 and bfloat16, as 16-bit patterns, to and from float in integer arithmetic: the same code, and so the
/// same bits, on every backend (a hardware conversion may differ — ILGPU's CPU accelerator truncates float → Half).
/// Narrowing rounds to nearest, ties to even; overflow becomes ±∞; NaN stays a (quiet) NaN of the same sign; binary16
/// subnormals are exact both ways.
/// </summary>
public static class HalfBits
{
    /// <summary>float → binary16 bits.</summary>
    public static ushort F16FromFloat(float value)
    {
        uint bits = Interop.FloatAsInt(value);
        uint sign = (bits >> 16) & 0x8000u, magnitude = bits & 0x7FFF_FFFFu;
        if (magnitude > 0x7F80_0000u)
            return (ushort)(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu));
        // 65520 = (65504 + 65536) / 2 is the tie between the largest half and the next step; 65504 is odd, so it rounds up.
        if (magnitude >= 0x477F_F000u)
            return (ushort)(sign | 0x7C00u);
        if (magnitude >= 0x3880_0000u)
        {
            // Normal: rebias the exponent (127 → 15), keep 10 mantissa bits, round on the 13 dropped ones.
            uint rebiased = (magnitude - (112u << 23)) >> 13, dropped = magnitude & 0x1FFFu;
            if (dropped > 0x1000u || (dropped == 0x1000u && (rebiased & 1u) != 0))
                rebiased++;
            return (ushort)(sign | rebiased);
        }
        // Subnormal half: the value in units of 2^-24, from the 24-bit significand (2^-25 and below round to 0).
        if (magnitude <= 0x3300_0000u)
            return (ushort)sign;
        int exponent = (int)(magnitude >> 23);
        uint significand = (magnitude & 0x7F_FFFFu) | 0x80_0000u;
        int shift = 126 - exponent;
        uint units = significand >> shift, rest = significand & ((1u << shift) - 1u), half = 1u << (shift - 1);
        if (rest > half || (rest == half && (units & 1u) != 0))
            units++;
        return (ushort)(sign | units);
    }

    /// <summary>binary16 bits → float (exact).</summary>
    public static float F16ToFloat(ushort value)
    {
        uint sign = (uint)(value & 0x8000) << 16;
        uint exponent = (uint)(value >> 10) & 0x1Fu, mantissa = value & 0x3FFu;
        if (exponent == 0x1Fu)
            return Interop.IntAsFloat(sign | 0x7F80_0000u | (mantissa << 13));
        if (exponent != 0)
            return Interop.IntAsFloat(sign | ((exponent + 112u) << 23) | (mantissa << 13));
        float subnormal = mantissa * 5.9604644775390625e-8f; // mantissa · 2^-24, exact
        return sign != 0 ? -subnormal : subnormal;
    }

    /// <summary>float → bfloat16 bits (the top half of the float, rounded).</summary>
    public static ushort BF16FromFloat(float value)
    {
        uint bits = Interop.FloatAsInt(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u)
            return (ushort)((bits >> 16) | 0x40u);
        uint rounding = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>bfloat16 bits → float (exact).</summary>
    public static float BF16ToFloat(ushort value) => Interop.IntAsFloat((uint)value << 16);
}

/// <summary>float → binary16.</summary>
public readonly struct F32ToF16 : IElementConversion<float, ushort>
{
    /// <inheritdoc />
    public ushort Convert(float value) => HalfBits.F16FromFloat(value);
}

/// <summary>binary16 → float.</summary>
public readonly struct F16ToF32 : IElementConversion<ushort, float>
{
    /// <inheritdoc />
    public float Convert(ushort value) => HalfBits.F16ToFloat(value);
}

/// <summary>float → bfloat16.</summary>
public readonly struct F32ToBF16 : IElementConversion<float, ushort>
{
    /// <inheritdoc />
    public ushort Convert(float value) => HalfBits.BF16FromFloat(value);
}

/// <summary>bfloat16 → float.</summary>
public readonly struct BF16ToF32 : IElementConversion<ushort, float>
{
    /// <inheritdoc />
    public float Convert(ushort value) => HalfBits.BF16ToFloat(value);
}

/// <summary>binary16 → bfloat16, through the exact float.</summary>
public readonly struct F16ToBF16 : IElementConversion<ushort, ushort>
{
    /// <inheritdoc />
    public ushort Convert(ushort value) => HalfBits.BF16FromFloat(HalfBits.F16ToFloat(value));
}

/// <summary>bfloat16 → binary16, through the exact float.</summary>
public readonly struct BF16ToF16 : IElementConversion<ushort, ushort>
{
    /// <inheritdoc />
    public ushort Convert(ushort value) => HalfBits.F16FromFloat(HalfBits.BF16ToFloat(value));
}
