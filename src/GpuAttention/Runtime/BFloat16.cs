using GpuAttention.Kernels;

namespace GpuAttention.Runtime;

/// <summary>
/// A bfloat16 value: the top 16 bits of a float (sign, 8 exponent bits, 7 mantissa bits). .NET 10 has no bfloat16 type,
/// so this carries the bits for uploads and downloads of <see cref="DType.BF16"/> tensors; conversion from float rounds
/// to nearest, ties to even, the same way the kernels convert.
/// </summary>
public readonly record struct BFloat16(ushort Bits)
{
    /// <summary>Rounds <paramref name="value"/> to the nearest bfloat16 (ties to even; NaN stays NaN).</summary>
    public static explicit operator BFloat16(float value) => new(HalfBits.BF16FromFloat(value));

    /// <summary>The exact float value.</summary>
    public static explicit operator float(BFloat16 value) => HalfBits.BF16ToFloat(value.Bits);

    /// <inheritdoc />
    public override string ToString() => ((float)this).ToString();
}
