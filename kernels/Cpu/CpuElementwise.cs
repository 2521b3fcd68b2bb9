using System.Runtime.CompilerServices;
using System.Numerics.Tensors;

namespace GpuAttention.Kernels.Cpu;

/// <summary>The managed counterparts of <see cref="ElementwiseKernels"/>, same contracts.</summary>
public static unsafe class CpuElementwise
{
    /// <summary>Elements per task of the streaming ops (~20 µs each): smaller ones run inline.</summary>
    private const int ChunkElements = 1 << 18;

    /// <summary>y[i] = a[i] + b[i]; TensorPrimitives already runs it at the widest vector width the CPU has.</summary>
    public static void Add(CpuExecution execution, float* a, float* b, float* y, long length)
    {
        nint aAddress = (nint)a, bAddress = (nint)b, yAddress = (nint)y;
        Chunks(execution, length, (start, count) => TensorPrimitives.Add(new ReadOnlySpan<float>((float*)aAddress + start, count),
            new ReadOnlySpan<float>((float*)bAddress + start, count), new Span<float>((float*)yAddress + start, count)));
    }

    /// <summary>y[i] = act(alpha·x[i]).</summary>
    public static void ScaleActivate(CpuExecution execution, float* x, float* y, long length, float alpha, int activation)
    {
        nint xAddress = (nint)x, yAddress = (nint)y;
        Chunks(execution, length, (start, count) =>
            CpuVector.ScaleActivate((float*)xAddress + start, alpha, activation, (float*)yAddress + start, count));
    }

    /// <summary>y[i] = convert(x[i]) between element types, the same conversion the ILGPU kernels run.</summary>
    public static void Convert<TFrom, TTo, TConversion>(CpuExecution execution, TFrom* x, TTo* y, long length)
        where TFrom : unmanaged where TTo : unmanaged where TConversion : struct, IElementConversion<TFrom, TTo>
    {
        nint xAddress = (nint)x, yAddress = (nint)y;
        Chunks(execution, length, (start, count) =>
        {
            TFrom* source = (TFrom*)xAddress + start;
            TTo* target = (TTo*)yAddress + start;
            for (int i = 0; i < count; i++)
                target[i] = default(TConversion).Convert(source[i]);
        });
    }

    /// <summary>output[t, :] = table[tokens[t], :]·scale (token ids validated by the caller).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void EmbeddingGather(ReadOnlySpan<int> tokens, float* table, float* output, int width, float scale)
    {
        for (int t = 0; t < tokens.Length; t++)
            CpuVector.Scale(table + (long)tokens[t] * width, scale, output + (long)t * width, width);
    }

    /// <summary>
    /// y = x + PE for rows of <paramref name="width"/>, row r at position firstPosition + r mod length; the encoding in
    /// double precision, as <see cref="ElementwiseKernels.AddSinusoidalPositions"/> computes it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddSinusoidalPositions(float* x, float* y, int rows, int width, int length, int firstPosition)
    {
        for (int r = 0; r < rows; r++)
        {
            int position = firstPosition + r % length;
            long row = (long)r * width;
            for (int c = 0; c < width; c++)
            {
                double angle = position * Math.Exp(-(c - c % 2) * Math.Log(10000.0) / width);
                y[row + c] = (float)(x[row + c] + (c % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle)));
            }
        }
    }

    /// <summary>Features firstFeature … of x [batch, length, width] → y [batch, heads, capacity, d] at rows firstRow ….</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SplitHeads(float* x, float* y, int batch, int length, int heads, int headDim, int capacity, int firstRow,
        int width, int firstFeature)
    {
        for (int b = 0; b < batch; b++)
        for (int l = 0; l < length; l++)
            SplitRow(x + ((long)b * length + l) * width + firstFeature, y + ((long)b * heads * capacity + firstRow + l) * headDim,
                heads, headDim, (long)capacity * headDim);
    }

    /// <summary>y [batch, heads, length, d] ← features firstFeature … of row rows[b·length + t] of x (rows of <paramref name="width"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GatherSplitHeads(float* x, ReadOnlySpan<int> rows, float* y, int batch, int length, int heads, int headDim,
        int width, int firstFeature)
    {
        for (int b = 0; b < batch; b++)
        for (int l = 0; l < length; l++)
            SplitRow(x + (long)rows[b * length + l] * width + firstFeature, y + ((long)b * heads * length + l) * headDim,
                heads, headDim, (long)length * headDim);
    }

    /// <summary>Row i of y [.., heads·d] ← the heads of x [batch, heads, length, d] at row rows[i] = b·length + t.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MergeHeadsGather(float* x, ReadOnlySpan<int> rows, float* y, int length, int heads, int headDim)
    {
        for (int i = 0; i < rows.Length; i++)
        {
            int b = rows[i] / length, l = rows[i] % length;
            for (int h = 0; h < heads; h++)
            {
                var source = new ReadOnlySpan<float>(x + (((long)b * heads + h) * length + l) * headDim, headDim);
                source.CopyTo(new Span<float>(y + ((long)i * heads + h) * headDim, headDim));
            }
        }
    }

    /// <summary>One row's heads·d features → d floats per head, heads <paramref name="headStride"/> floats apart.</summary>
    private static void SplitRow(float* row, float* target, int heads, int headDim, long headStride)
    {
        for (int h = 0; h < heads; h++)
            new ReadOnlySpan<float>(row + (long)h * headDim, headDim).CopyTo(new Span<float>(target + h * headStride, headDim));
    }

    /// <summary>x [batch, heads, length, d] → y [batch, length, heads·d].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MergeHeads(float* x, float* y, int batch, int length, int heads, int headDim)
    {
        for (int b = 0; b < batch; b++)
        for (int l = 0; l < length; l++)
        for (int h = 0; h < heads; h++)
        {
            var source = new ReadOnlySpan<float>(x + (((long)b * heads + h) * length + l) * headDim, headDim);
            source.CopyTo(new Span<float>(y + ((long)b * length + l) * heads * headDim + (long)h * headDim, headDim));
        }
    }

    /// <summary>y[i, :] = x[sources[i], :] over rows of <paramref name="rowLength"/> floats.</summary>
    public static void GatherRows(float* x, ReadOnlySpan<int> sources, float* y, long rowLength)
    {
        for (int i = 0; i < sources.Length; i++)
            Buffer.MemoryCopy(x + sources[i] * rowLength, y + i * rowLength, rowLength * sizeof(float), rowLength * sizeof(float));
    }

    private static void Chunks(CpuExecution execution, long length, Action<long, int> body)
    {
        int chunks = checked((int)((length + ChunkElements - 1) / ChunkElements));
        execution.For(chunks, chunk => body((long)chunk * ChunkElements, (int)Math.Min(ChunkElements, length - (long)chunk * ChunkElements)));
    }
}
