using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using GpuAttention.Problems;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// The managed layer norm, same contract as <see cref="LayerNormKernels.LayerNorm"/>: z = x (+ residual), sums over
/// z − z[0] and the variance about the mean in a second pass, y = (z − mean)/√(var + ε)·gain + bias. y may be x.
/// </summary>
public static unsafe class CpuLayerNorm
{
    /// <summary>Normalises every row; <paramref name="residual"/> is read when the problem has one.</summary>
    public static void LayerNorm(CpuExecution execution, float* x, float* residual, float* gain, float* bias, float* y, LayerNormProblem p)
    {
        int width = p.Width;
        int rowsPerTask = Math.Max(1, (1 << 16) / width);
        int tasks = (int)(((long)p.Rows + rowsPerTask - 1) / rowsPerTask);
        nint xAddress = (nint)x, residualAddress = p.HasResidual != 0 ? (nint)residual : 0;
        nint gainAddress = (nint)gain, biasAddress = (nint)bias, yAddress = (nint)y;
        execution.For(tasks, task =>
        {
            using var z = execution.Rent(ScratchSlot.Tile, width);
            int end = (int)Math.Min(p.Rows, (task + 1L) * rowsPerTask);
            for (int row = task * rowsPerTask; row < end; row++)
            {
                long offset = (long)row * width;
                Row((float*)xAddress + offset, residualAddress == 0 ? null : (float*)residualAddress + offset,
                    (float*)gainAddress, (float*)biasAddress, (float*)yAddress + offset, z.Pointer, width, p.Epsilon);
            }
        });
    }

    /// <summary>
    /// BERT's embeddings, as <see cref="LayerNormKernels.EmbeddingLayerNorm"/>: row r of y = LayerNorm(words[ids[r]] +
    /// types[ids[2·rows + r]] + positions[ids[rows + r]])·gain + bias (ids validated by the caller).
    /// </summary>
    public static void EmbeddingLayerNorm(CpuExecution execution, int[] ids, float* words, float* positions, float* types,
        float* gain, float* bias, float* y, int width, float epsilon)
    {
        int rows = ids.Length / 3;
        int rowsPerTask = Math.Max(1, (1 << 16) / width);
        int tasks = (rows + rowsPerTask - 1) / rowsPerTask;
        nint wordsAddress = (nint)words, positionsAddress = (nint)positions, typesAddress = (nint)types;
        nint gainAddress = (nint)gain, biasAddress = (nint)bias, yAddress = (nint)y;
        execution.For(tasks, task =>
        {
            using var z = execution.Rent(ScratchSlot.Tile, width);
            int end = Math.Min(rows, (task + 1) * rowsPerTask);
            for (int row = task * rowsPerTask; row < end; row++)
            {
                // word + type into y's row, then the norm with the position row as its residual (Row allows y = x).
                float* target = (float*)yAddress + (long)row * width;
                TensorPrimitives.Add(new ReadOnlySpan<float>((float*)wordsAddress + (long)ids[row] * width, width),
                    new ReadOnlySpan<float>((float*)typesAddress + (long)ids[2 * rows + row] * width, width), new Span<float>(target, width));
                Row(target, (float*)positionsAddress + (long)ids[rows + row] * width, (float*)gainAddress, (float*)biasAddress, target,
                    z.Pointer, width, epsilon);
            }
        }, execution.Worthwhile((long)rows * width * 8));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row(float* x, float* residual, float* gain, float* bias, float* y, float* z, int width, float epsilon)
    {
        float shift = x[0] + (residual != null ? residual[0] : 0f);
        int j = 0;
        float sum = 0f;
        bool vector = CpuFeatures.Vector256Paths;
        if (vector)
        {
            var shiftVector = Vector256.Create(shift);
            var sums = Vector256<float>.Zero;
            for (; j + 8 <= width; j += 8)
            {
                var value = Vector256.Load(x + j);
                if (residual != null)
                    value += Vector256.Load(residual + j);
                value -= shiftVector;
                value.Store(z + j);
                sums += value;
            }
            sum = Vector256.Sum(sums);
        }
        for (; j < width; j++)
        {
            z[j] = x[j] + (residual != null ? residual[j] : 0f) - shift;
            sum += z[j];
        }
        float mean = sum / width;

        j = 0;
        float squares = 0f;
        if (vector)
        {
            var meanVector = Vector256.Create(mean);
            var sums = Vector256<float>.Zero;
            for (; j + 8 <= width; j += 8)
            {
                var d = Vector256.Load(z + j) - meanVector;
                sums = CpuVector.MultiplyAdd(d, d, sums);
            }
            squares = Vector256.Sum(sums);
        }
        for (; j < width; j++)
            squares += (z[j] - mean) * (z[j] - mean);
        float inverseStd = 1f / MathF.Sqrt(squares / width + epsilon);

        j = 0;
        if (vector)
        {
            var meanVector = Vector256.Create(mean);
            var scale = Vector256.Create(inverseStd);
            for (; j + 8 <= width; j += 8)
                CpuVector.MultiplyAdd((Vector256.Load(z + j) - meanVector) * scale, Vector256.Load(gain + j), Vector256.Load(bias + j)).Store(y + j);
        }
        for (; j < width; j++)
            y[j] = (z[j] - mean) * inverseStd * gain[j] + bias[j];
    }

    /// <summary>y = x / max(‖x‖₂, ε) over rows of <paramref name="width"/>, as <see cref="LayerNormKernels.L2Normalize"/>; y may be x.</summary>
    public static void L2Normalize(CpuExecution execution, float* x, float* y, int rows, int width, float epsilon)
    {
        int rowsPerTask = Math.Max(1, (1 << 16) / width);
        int tasks = (int)(((long)rows + rowsPerTask - 1) / rowsPerTask);
        nint xAddress = (nint)x, yAddress = (nint)y;
        execution.For(tasks, task =>
        {
            int end = (int)Math.Min(rows, (task + 1L) * rowsPerTask);
            for (int row = task * rowsPerTask; row < end; row++)
            {
                float* from = (float*)xAddress + (long)row * width, to = (float*)yAddress + (long)row * width;
                float squares = 0f;
                for (int j = 0; j < width; j++)
                    squares += from[j] * from[j];
                float inverse = 1f / MathF.Max(MathF.Sqrt(squares), epsilon);
                for (int j = 0; j < width; j++)
                    to[j] = from[j] * inverse;
            }
        });
    }
}
