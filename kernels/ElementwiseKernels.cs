using GpuAttention.Problems;
using ILGPU;
using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>Small memory-bound kernels the model needs; all auto-grouped over one index per output element.</summary>
public static class ElementwiseKernels
{
    /// <summary>y[i] = a[i] + b[i].</summary>
    public static void Add(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) => y[i] = a[i] + b[i];

    /// <summary>y[i] = act(alpha·x[i]) for an <see cref="Activation"/> value.</summary>
    public static void ScaleActivate(Index1D i, ArrayView<float> x, ArrayView<float> y, float alpha, int activation) =>
        y[i] = ActivationMath.Apply(alpha * x[i], activation);

    /// <summary>
    /// out[t, c] = table[tokens[t], c]·scale: the token embedding (scale √d_model in the paper).
    /// Launch over Index2D(width, tokens); token ids are validated by the caller.
    /// </summary>
    public static void EmbeddingGather(Index2D index, ArrayView<int> tokens, ArrayView<float> table,
        ArrayView<float> output, int width, float scale)
    {
        int c = index.X, t = index.Y;
        output[(long)t * width + c] = table[(long)tokens[t] * width + c] * scale;
    }

    /// <summary>
    /// y[r, c] = x[r, c] + PE(position, c) with position = firstPosition + r mod length, where
    /// PE(pos, 2i) = sin(pos / 10000^(2i/width)) and PE(pos, 2i+1) = cos(…). Computed in double:
    /// a float angle loses ~1e-4 absolute at positions in the thousands.
    /// Launch over Index2D(width, rows) for x viewed as [rows, width], rows = batch·length.
    /// </summary>
    public static void AddSinusoidalPositions(Index2D index, ArrayView<float> x, ArrayView<float> y, int width,
        int length, int firstPosition)
    {
        int c = index.X, r = index.Y;
        int position = firstPosition + r % length;
        double frequency = XMath.Exp(-(c - c % 2) * XMath.Log(10000.0) / width);
        double angle = position * frequency;
        double pe = c % 2 == 0 ? XMath.Sin(angle) : XMath.Cos(angle);
        long at = (long)r * width + c;
        y[at] = (float)(x[at] + pe);
    }

    /// <summary>
    /// Splits heads: features <paramref name="firstFeature"/> … firstFeature + heads·d − 1 of x [batch, length, width]
    /// → y [batch, heads, capacity, d] at rows <paramref name="firstRow"/> … firstRow + length − 1 (appending to a
    /// key/value cache when firstRow &gt; 0; one part of a fused Q|K|V product when width &gt; heads·d).
    /// Launch over Index3D(heads·d, length, batch).
    /// </summary>
    public static void SplitHeads(Index3D index, ArrayView<float> x, ArrayView<float> y, int length, int heads,
        int headDim, int capacity, int firstRow, int width, int firstFeature)
    {
        int column = index.X, row = index.Y, batch = index.Z;
        int head = column / headDim, c = column % headDim;
        y[(((long)batch * heads + head) * capacity + firstRow + row) * headDim + c] =
            x[((long)batch * length + row) * width + firstFeature + column];
    }

    /// <summary>
    /// Gathers and splits heads in one pass: y[b, h, t, :] = features firstFeature + h·d … of row rows[b·length + t] of x
    /// (rows of <paramref name="width"/>): the packed tokens of a fused Q|K|V product into attention's padded layout.
    /// Launch over Index3D(heads·d, length, batch).
    /// </summary>
    public static void GatherSplitHeads(Index3D index, ArrayView<float> x, ArrayView<int> rows, ArrayView<float> y, int length,
        int heads, int headDim, int width, int firstFeature)
    {
        int column = index.X, row = index.Y, batch = index.Z;
        int head = column / headDim, c = column % headDim;
        y[(((long)batch * heads + head) * length + row) * headDim + c] =
            x[(long)rows[batch * length + row] * width + firstFeature + column];
    }

    /// <summary>
    /// Merges heads: x [batch, heads, length, d] → y [batch, length, heads·d], the inverse of
    /// <see cref="SplitHeads"/> with capacity = length. Launch over Index3D(heads·d, length, batch).
    /// </summary>
    public static void MergeHeads(Index3D index, ArrayView<float> x, ArrayView<float> y, int length, int heads,
        int headDim)
    {
        int column = index.X, row = index.Y, batch = index.Z;
        int head = column / headDim, c = column % headDim;
        y[((long)batch * length + row) * heads * headDim + column] =
            x[(((long)batch * heads + head) * length + row) * headDim + c];
    }

    /// <summary>
    /// Merges heads and gathers rows in one pass: row i of y [.., heads·d] = the heads of x [batch, heads, length, d] at
    /// row rows[i] (b·length + t) — attention's padded layout back to packed tokens. Launch over Index2D(heads·d, rows).
    /// </summary>
    public static void MergeHeadsGather(Index2D index, ArrayView<float> x, ArrayView<int> rows, ArrayView<float> y, int length,
        int heads, int headDim)
    {
        int column = index.X, i = index.Y;
        int head = column / headDim, c = column % headDim;
        int source = rows[i], batch = source / length, row = source % length;
        y[(long)i * heads * headDim + column] = x[(((long)batch * heads + head) * length + row) * headDim + c];
    }

    /// <summary>
    /// y[i, :] = x[sources[i], :] over rows of <paramref name="rowLength"/> floats: reorders the batch entries
    /// of a key/value cache when beam search keeps some hypotheses and drops others.
    /// Launch over Index2D(rowLength, sources.Length); y must not alias x.
    /// </summary>
    public static void GatherRows(Index2D index, ArrayView<float> x, ArrayView<int> sources, ArrayView<float> y,
        int rowLength)
    {
        int c = index.X, i = index.Y;
        y[(long)i * rowLength + c] = x[(long)sources[i] * rowLength + c];
    }

    /// <summary>y[i] = convert(x[i]) between element types (dtype conversion). Launch: auto-grouped over Index1D(length).</summary>
    public static void Convert<TFrom, TTo, TConversion>(Index1D i, ArrayView<TFrom> x, ArrayView<TTo> y)
        where TFrom : unmanaged where TTo : unmanaged where TConversion : struct, IElementConversion<TFrom, TTo> =>
        y[i] = default(TConversion).Convert(x[i]);
}
