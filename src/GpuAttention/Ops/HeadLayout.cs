using GpuAttention.Backends;
using GpuAttention.Runtime;

namespace GpuAttention.Ops;

/// <summary>Moves activations between the model's [batch, length, d_model] and attention's [batch, heads, length, d_k].</summary>
public static class HeadLayout
{
    /// <summary>
    /// x [batch, length, heads·d_k] → y [batch, heads, capacity, d_k], written at rows
    /// <paramref name="firstRow"/> … firstRow + length − 1 (capacity ≥ that): appends to a key/value cache.
    /// </summary>
    public static void Split(DeviceTensor x, DeviceTensor y, int firstRow = 0)
    {
        Check.Usable(x, nameof(x));
        Check.Usable(y, nameof(y), x.Device);
        Check.Rank(x, nameof(x), "([batch, length, heads·d_k])", 3);
        Check.Rank(y, nameof(y), "([batch, heads, capacity, d_k])", 4);
        int batch = x.Shape[0], length = x.Shape[1], heads = y.Shape[1], capacity = y.Shape[2], headDim = y.Shape[3];
        ArgumentOutOfRangeException.ThrowIfNegative(firstRow);
        if (y.Shape[0] != batch || (long)heads * headDim != x.Shape[2])
            throw new ArgumentException(
                $"Argument 'y' must have shape [{batch}, heads, capacity, d_k] with heads·d_k = {x.Shape[2]}, " +
                $"but has {DeviceTensor.ShapeText(y.Shape)}.", nameof(y));
        if ((long)firstRow + length > capacity)
            throw new ArgumentOutOfRangeException(nameof(firstRow), firstRow,
                $"Argument 'firstRow' plus the {length} rows of 'x' must fit the {capacity} rows of 'y' {DeviceTensor.ShapeText(y.Shape)}: firstRow ≤ {capacity - length}.");
        Check.Distinct(y, nameof(y), x, nameof(x));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.Split", x, nameof(x));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.Split", y, nameof(y));
        y.MarkWritten();
        x.Device.Backend.SplitHeads(x, y, batch, length, heads, headDim, capacity, firstRow);
    }

    /// <summary>x [batch, heads, length, d_k] → y [batch, length, heads·d_k].</summary>
    public static void Merge(DeviceTensor x, DeviceTensor y)
    {
        Check.Usable(x, nameof(x));
        Check.Usable(y, nameof(y), x.Device);
        Check.Rank(x, nameof(x), "([batch, heads, length, d_k])", 4);
        int batch = x.Shape[0], heads = x.Shape[1], length = x.Shape[2], headDim = x.Shape[3];
        Check.Shape(y, nameof(y), [batch, length, heads * headDim], "(batch, length, heads·d_k)");
        Check.Distinct(y, nameof(y), x, nameof(x));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.Merge", x, nameof(x));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.Merge", y, nameof(y));
        y.MarkWritten();
        x.Device.Backend.MergeHeads(x, y, batch, length, heads, headDim);
    }

    /// <summary>
    /// Row i of <paramref name="y"/> = row sources[i] of <paramref name="x"/>, rows being the last axis of each (x and y
    /// may hold different numbers of rows of one width): packs the real tokens of a padded batch into one sequence and
    /// back (<see cref="Model.PackedSequences"/>).
    /// </summary>
    public static void GatherRows(DeviceTensor x, ReadOnlySpan<int> sources, DeviceTensor y)
    {
        Check.Usable(x, nameof(x));
        Check.Usable(y, nameof(y), x.Device);
        int width = x.Shape[^1];
        if (y.Shape[^1] != width)
            throw new ArgumentException(
                $"Argument 'y' must have rows of {width} (the last axis of 'x' {DeviceTensor.ShapeText(x.Shape)}), but has {DeviceTensor.ShapeText(y.Shape)}.",
                nameof(y));
        long rows = x.Length / width, targets = y.Length / width;
        if (sources.Length != targets)
            throw new ArgumentException($"Argument 'sources' must hold one source per row of 'y' ({targets}), but holds {sources.Length}.", nameof(sources));
        foreach (int s in sources)
        {
            if ((uint)s >= (ulong)rows)
                throw new ArgumentOutOfRangeException(nameof(sources), s, $"Every source must be a row of 'x': 0..{rows - 1}.");
        }
        Check.Distinct(y, nameof(y), x, nameof(x));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.GatherRows", x, nameof(x));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.GatherRows", y, nameof(y));
        y.MarkWritten();
        x.Device.Backend.GatherRows(x, sources, y, width);
    }

    /// <summary>
    /// y[i] = x[sources[i]] along the first axis (x and y of the same shape): reorders a cache's batch entries
    /// after a beam-search step.
    /// </summary>
    public static void GatherBatch(DeviceTensor x, ReadOnlySpan<int> sources, DeviceTensor y)
    {
        Check.Usable(x, nameof(x));
        Check.Usable(y, nameof(y), x.Device);
        Check.Shape(y, nameof(y), [.. x.Shape], "(the shape of 'x')");
        Check.Distinct(y, nameof(y), x, nameof(x));
        int entries = x.Shape[0];
        if (sources.Length != entries)
            throw new ArgumentException($"Argument 'sources' must have shape [{entries}], but has [{sources.Length}].", nameof(sources));
        foreach (int s in sources)
        {
            if ((uint)s >= (uint)entries)
                throw new ArgumentOutOfRangeException(nameof(sources), s, $"Every source must be in 0..{entries - 1}.");
        }
        int rowLength = checked((int)(x.Length / entries));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.GatherBatch", x, nameof(x));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.GatherBatch", y, nameof(y));
        y.MarkWritten();
        x.Device.Backend.GatherRows(x, sources, y, rowLength);
    }
}
