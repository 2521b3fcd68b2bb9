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

    /// <summary>x [batch, length, heads·d] → y [batch, heads, capacity, d] at rows firstRow ….</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void SplitHeads(float* x, float* y, int batch, int length, int heads, int headDim, int capacity, int firstRow)
    {
        for (int b = 0; b < batch; b++)
        for (int l = 0; l < length; l++)
        for (int h = 0; h < heads; h++)
        {
            var source = new ReadOnlySpan<float>(x + ((long)b * length + l) * heads * headDim + (long)h * headDim, headDim);
            source.CopyTo(new Span<float>(y + (((long)b * heads + h) * capacity + firstRow + l) * headDim, headDim));
        }
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
