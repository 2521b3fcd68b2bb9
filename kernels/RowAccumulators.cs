using ILGPU;

namespace GpuAttention.Kernels;

/// <summary>
/// A thread's slice of an output row, held in registers: columns lane, lane + stride, lane + 2·stride, … of the row.
/// ILGPU 1.5.3 does not unroll loops (its unroller is disabled), and a local array indexed in a loop lives in local
/// memory, so the slices are structs of named fields with every operation written out: each field is a register.
/// Wider slices pair narrower ones (<see cref="Pair{TLow}"/> of <see cref="Columns8"/> is 16 columns, a pair of those 32),
/// specialised at compile time.
/// </summary>
public interface IRowAccumulator
{
    /// <summary>Columns the slice holds.</summary>
    int Capacity { get; }

    /// <summary>Every column times <paramref name="factor"/>.</summary>
    void Scale(float factor);

    /// <summary>
    /// Column i += <paramref name="weight"/>·values[i] for every column: constant offsets, which ptxas folds into the loads,
    /// and no test per column (the values past the row's end are staged as zeros).
    /// </summary>
    void AddScaled(float weight, ArrayView<float> values);

    /// <summary>target[offset + i·stride] = column i · <paramref name="factor"/> for the first <paramref name="count"/> columns.</summary>
    void Store(ArrayView<float> target, long offset, int stride, int count, float factor);
}

/// <summary>Eight columns.</summary>
public struct Columns8 : IRowAccumulator
{
    private float c0, c1, c2, c3, c4, c5, c6, c7;

    /// <inheritdoc />
    public readonly int Capacity => 8;

    /// <inheritdoc />
    public void Scale(float factor)
    {
        c0 *= factor;
        c1 *= factor;
        c2 *= factor;
        c3 *= factor;
        c4 *= factor;
        c5 *= factor;
        c6 *= factor;
        c7 *= factor;
    }

    /// <inheritdoc />
    public void AddScaled(float weight, ArrayView<float> values)
    {
        c0 += weight * values[0];
        c1 += weight * values[1];
        c2 += weight * values[2];
        c3 += weight * values[3];
        c4 += weight * values[4];
        c5 += weight * values[5];
        c6 += weight * values[6];
        c7 += weight * values[7];
    }

    /// <inheritdoc />
    public readonly void Store(ArrayView<float> target, long offset, int stride, int count, float factor)
    {
        if (count > 0) target[offset] = c0 * factor;
        if (count > 1) target[offset + stride] = c1 * factor;
        if (count > 2) target[offset + 2L * stride] = c2 * factor;
        if (count > 3) target[offset + 3L * stride] = c3 * factor;
        if (count > 4) target[offset + 4L * stride] = c4 * factor;
        if (count > 5) target[offset + 5L * stride] = c5 * factor;
        if (count > 6) target[offset + 6L * stride] = c6 * factor;
        if (count > 7) target[offset + 7L * stride] = c7 * factor;
    }
}

/// <summary>Two slices side by side: columns 0 … Low.Capacity − 1 in <c>low</c>, the rest in <c>high</c>.</summary>
public struct Pair<TLow> : IRowAccumulator where TLow : struct, IRowAccumulator
{
    // Zero to start with, and changed only through their own methods, which the compiler does not count as assignments.
#pragma warning disable CS0649
    private TLow low, high;
#pragma warning restore CS0649

    /// <inheritdoc />
    public readonly int Capacity => 2 * low.Capacity;

    /// <inheritdoc />
    public void Scale(float factor)
    {
        low.Scale(factor);
        high.Scale(factor);
    }

    /// <inheritdoc />
    public void AddScaled(float weight, ArrayView<float> values)
    {
        low.AddScaled(weight, values);
        high.AddScaled(weight, values.SubView(low.Capacity));
    }

    /// <inheritdoc />
    public readonly void Store(ArrayView<float> target, long offset, int stride, int count, float factor)
    {
        int half = low.Capacity;
        low.Store(target, offset, stride, count, factor);
        if (count > half)
            high.Store(target, offset + (long)half * stride, stride, count - half, factor);
    }
}
