using GpuAttention.Backends;
using GpuAttention.Runtime;

namespace GpuAttention.Ops;

/// <summary>Moves activations between the model's [batch, length, d_model] and attention's [batch, heads, length, d_k].</summary>
public static class HeadLayout
{
    /// <summary>
    /// x [batch, length, heads·d_k] → y [batch, heads, capacity, d_k], written at rows
    /// <paramref name="firstRow"/> … firstRow + length − 1 (capacity ≥ that): appends to a key/value cache.
    /// With <paramref name="firstFeature"/>, x's rows may be wider than heads·d_k and y takes features firstFeature …
    /// firstFeature + heads·d_k − 1 of each: one of Q, K, V from a fused [batch, length, 3·d_model] projection.
    /// </summary>
    public static void Split(DeviceTensor x, DeviceTensor y, int firstRow = 0, int firstFeature = 0)
    {
        Check.Usable(x, nameof(x));
        Check.Usable(y, nameof(y), x.Device);
        Check.Rank(x, nameof(x), "([batch, length, width])", 3);
        Check.Rank(y, nameof(y), "([batch, heads, capacity, d_k])", 4);
        int batch = x.Shape[0], length = x.Shape[1], heads = y.Shape[1], capacity = y.Shape[2], headDim = y.Shape[3];
        ArgumentOutOfRangeException.ThrowIfNegative(firstRow);
        if (y.Shape[0] != batch)
            throw new ArgumentException(
                $"Argument 'y' must have shape [{batch}, heads, capacity, d_k] (batch from 'x' {DeviceTensor.ShapeText(x.Shape)}), " +
                $"but has {DeviceTensor.ShapeText(y.Shape)}.", nameof(y));
        CheckFeatures(x, y, firstFeature);
        if ((long)firstRow + length > capacity)
            throw new ArgumentOutOfRangeException(nameof(firstRow), firstRow,
                $"Argument 'firstRow' plus the {length} rows of 'x' must fit the {capacity} rows of 'y' {DeviceTensor.ShapeText(y.Shape)}: firstRow ≤ {capacity - length}.");
        Check.Distinct(y, nameof(y), x, nameof(x));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.Split", x, nameof(x));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.Split", y, nameof(y));
        y.MarkWritten();
        x.Device.Backend.SplitHeads(x, y, batch, length, heads, headDim, capacity, firstRow, x.Shape[2], firstFeature);
    }

    /// <summary>
    /// Gathers rows and splits heads in one pass: y[b, h, t, :] = features firstFeature + h·d_k … firstFeature + (h + 1)·d_k − 1
    /// of row <paramref name="rows"/>[b·L + t] of <paramref name="x"/> (rows being its last axis, of any width ≥
    /// firstFeature + heads·d_k); y is [batch, heads, L, d_k]. Takes the packed tokens of a fused Q|K|V product
    /// (<see cref="Model.PackedSequences.PaddedSources"/>) straight to attention's padded layout.
    /// </summary>
    public static void GatherSplit(DeviceTensor x, ReadOnlySpan<int> rows, DeviceTensor y, int firstFeature = 0)
    {
        Check.Usable(x, nameof(x));
        Check.Usable(y, nameof(y), x.Device);
        Check.Rank(y, nameof(y), "([batch, heads, L, d_k])", 4);
        int batch = y.Shape[0], heads = y.Shape[1], length = y.Shape[2], headDim = y.Shape[3];
        CheckFeatures(x, y, firstFeature);
        CheckRows(rows, (long)batch * length, "one per row of attention's layout, batch·L", x.Length / x.Shape[^1], "a row of 'x'");
        Check.Distinct(y, nameof(y), x, nameof(x));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.GatherSplit", x, nameof(x));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.GatherSplit", y, nameof(y));
        y.MarkWritten();
        x.Device.Backend.GatherSplitHeads(x, rows, y, batch, length, heads, headDim, x.Shape[^1], firstFeature);
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
    /// Merges heads and gathers rows in one pass: row i of <paramref name="y"/> (rows of heads·d_k, its last axis) = the heads
    /// of x [batch, heads, L, d_k] at row <paramref name="rows"/>[i] = b·L + t. Takes attention's padded layout back to
    /// packed tokens (<see cref="Model.PackedSequences.PackedSources"/>).
    /// </summary>
    public static void MergeGather(DeviceTensor x, ReadOnlySpan<int> rows, DeviceTensor y)
    {
        Check.Usable(x, nameof(x));
        Check.Usable(y, nameof(y), x.Device);
        Check.Rank(x, nameof(x), "([batch, heads, L, d_k])", 4);
        int batch = x.Shape[0], heads = x.Shape[1], length = x.Shape[2], headDim = x.Shape[3];
        long width = (long)heads * headDim;
        if (y.Shape[^1] != width)
            throw new ArgumentException(
                $"Argument 'y' must have rows of heads·d_k = {width} (from 'x' {DeviceTensor.ShapeText(x.Shape)}), but has {DeviceTensor.ShapeText(y.Shape)}.",
                nameof(y));
        CheckRows(rows, y.Length / width, "one per row of 'y'", (long)batch * length, "a row b·L + t of 'x'");
        Check.Distinct(y, nameof(y), x, nameof(x));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.MergeGather", x, nameof(x));
        Check.Implemented(x.Device, OpFamily.HeadLayout, "HeadLayout.MergeGather", y, nameof(y));
        y.MarkWritten();
        x.Device.Backend.MergeHeadsGather(x, rows, y, length, heads, headDim);
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

    /// <summary>x's rows hold features firstFeature … firstFeature + heads·d_k − 1 for y [.., heads, .., d_k].</summary>
    private static void CheckFeatures(DeviceTensor x, DeviceTensor y, int firstFeature)
    {
        long needed = (long)y.Shape[1] * y.Shape[3];
        ArgumentOutOfRangeException.ThrowIfNegative(firstFeature);
        if (firstFeature + needed > x.Shape[^1])
            throw new ArgumentException(
                $"Argument 'y' {DeviceTensor.ShapeText(y.Shape)} takes heads·d_k = {needed} features from feature {firstFeature} of 'x', " +
                $"whose rows have {x.Shape[^1]} {DeviceTensor.ShapeText(x.Shape)}.", nameof(y));
    }

    private static void CheckRows(ReadOnlySpan<int> rows, long count, string countMeaning, long sources, string sourceMeaning)
    {
        if (rows.Length != count)
            throw new ArgumentException($"Argument 'rows' must hold {count} rows ({countMeaning}), but holds {rows.Length}.", "rows");
        foreach (int r in rows)
        {
            if ((uint)r >= (ulong)sources)
                throw new ArgumentOutOfRangeException("rows", r, $"Every entry must be {sourceMeaning}: 0..{sources - 1}.");
        }
    }
}
