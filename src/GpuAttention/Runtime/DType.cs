namespace GpuAttention.Runtime;

/// <summary>The element type a tensor stores. Arithmetic accumulates in fp32 whatever the storage.</summary>
public enum DType
{
    /// <summary>IEEE binary32 (<see cref="float"/>).</summary>
    F32,
    /// <summary>IEEE binary16 (<see cref="System.Half"/>).</summary>
    F16,
    /// <summary>bfloat16: a float's sign, exponent and top 7 mantissa bits (<see cref="BFloat16"/>).</summary>
    BF16,
}

/// <summary>Sizes and names of <see cref="DType"/> values.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int Size(this DType dtype) => dtype switch
    {
        DType.F32 => sizeof(float),
        DType.F16 or DType.BF16 => sizeof(ushort),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype; expected F32, F16 or BF16."),
    };

    /// <summary>The element type of spans that carry <paramref name="dtype"/>'s values.</summary>
    internal static Type ElementType(this DType dtype) => dtype switch
    {
        DType.F32 => typeof(float),
        DType.F16 => typeof(Half),
        _ => typeof(BFloat16),
    };
}
