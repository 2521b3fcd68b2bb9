using GpuAttention.Problems;
using ILGPU;
using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>Layer normalisation over the last axis, optionally fused with the residual add.</summary>
public static class LayerNormKernels
{
    /// <summary>
    /// y = (z − mean(z)) / sqrt(var(z) + eps) · gain + bias with z = x + residual (residual when
    /// <see cref="LayerNormProblem.HasResidual"/> is set). One group per row, any group size. Sums run over
    /// z − z[0] and the variance is taken about the mean in a second pass (not E[z²] − mean²): a row
    /// sitting at a large offset then keeps its fp32 precision instead of cancelling.
    /// Dynamic shared memory: the group size in floats for the reductions, plus the row width in
    /// floats when <paramref name="cacheRow"/> is non-zero (global memory is then read once), else 1.
    /// </summary>
    public static void LayerNorm(ArrayView<float> x, ArrayView<float> residual, ArrayView<float> gain,
        ArrayView<float> bias, ArrayView<float> y, LayerNormProblem p, int cacheRow)
    {
        int width = p.Width, hasResidual = p.HasResidual;
        long offset = (long)Grid.IdxX * width;
        var shared = SharedMemory.GetDynamic<float>();
        var scratch = shared.SubView(0, Group.DimX);
        var cache = shared.SubView(Group.DimX);

        float shift = x[offset];
        if (hasResidual != 0)
            shift += residual[offset];

        float localSum = 0f;
        for (int j = Group.IdxX; j < width; j += Group.DimX)
        {
            float z = x[offset + j];
            if (hasResidual != 0)
                z += residual[offset + j];
            z -= shift;
            if (cacheRow != 0)
                cache[j] = z;
            localSum += z;
        }
        float mean = GroupReduce.Sum(localSum, scratch) / width;

        float localSquares = 0f;
        for (int j = Group.IdxX; j < width; j += Group.DimX)
        {
            float d = Load(x, residual, cache, offset, j, hasResidual, cacheRow, shift) - mean;
            localSquares += d * d;
        }
        float variance = GroupReduce.Sum(localSquares, scratch) / width;
        float inverseStd = XMath.Rsqrt(variance + p.Epsilon);

        for (int j = Group.IdxX; j < width; j += Group.DimX)
        {
            float z = Load(x, residual, cache, offset, j, hasResidual, cacheRow, shift);
            y[offset + j] = (z - mean) * inverseStd * gain[j] + bias[j];
        }
    }

    /// <summary>
    /// y = x / max(‖x‖₂, <paramref name="epsilon"/>) over rows of <paramref name="width"/> (PyTorch's F.normalize). One group
    /// per row, any group size; dynamic shared memory: the group size in floats.
    /// </summary>
    public static void L2Normalize(ArrayView<float> x, ArrayView<float> y, int width, float epsilon)
    {
        long offset = (long)Grid.IdxX * width;
        float localSquares = 0f;
        for (int j = Group.IdxX; j < width; j += Group.DimX)
        {
            float v = x[offset + j];
            localSquares += v * v;
        }
        float norm = XMath.Sqrt(GroupReduce.Sum(localSquares, SharedMemory.GetDynamic<float>()));
        float inverse = 1f / XMath.Max(norm, epsilon);
        for (int j = Group.IdxX; j < width; j += Group.DimX)
            y[offset + j] = x[offset + j] * inverse;
    }

    /// <summary>
    /// BERT's embeddings in one pass: y[r] = LayerNorm(words[w] + types[t] + positions[p])·gain + bias with w, p, t =
    /// ids[r], ids[rows + r], ids[2·rows + r] (Hugging Face's order of the sums). One group per row, any group size; the
    /// summed row is kept in shared memory, so each table row is read once. Dynamic shared memory: the group size plus
    /// the width in floats. Sums and the variance as <see cref="LayerNorm"/> takes them (about z[0], then about the mean).
    /// </summary>
    public static void EmbeddingLayerNorm(ArrayView<int> ids, ArrayView<float> words, ArrayView<float> positions,
        ArrayView<float> types, ArrayView<float> gain, ArrayView<float> bias, ArrayView<float> y, int rows, int width, float epsilon)
    {
        int row = Grid.IdxX;
        long word = (long)ids[row] * width, position = (long)ids[rows + row] * width, type = (long)ids[2 * rows + row] * width;
        long offset = (long)row * width;
        var shared = SharedMemory.GetDynamic<float>();
        var scratch = shared.SubView(0, Group.DimX);
        var z = shared.SubView(Group.DimX, width);

        float shift = words[word] + types[type] + positions[position];
        float localSum = 0f;
        for (int j = Group.IdxX; j < width; j += Group.DimX)
        {
            float v = words[word + j] + types[type + j] + positions[position + j] - shift;
            z[j] = v;
            localSum += v;
        }
        float mean = GroupReduce.Sum(localSum, scratch) / width;

        float localSquares = 0f;
        for (int j = Group.IdxX; j < width; j += Group.DimX)
        {
            float d = z[j] - mean;
            localSquares += d * d;
        }
        float inverseStd = XMath.Rsqrt(GroupReduce.Sum(localSquares, scratch) / width + epsilon);
        for (int j = Group.IdxX; j < width; j += Group.DimX)
            y[offset + j] = (z[j] - mean) * inverseStd * gain[j] + bias[j];
    }

    /// <summary>z[j] − shift, from the shared cache when the row is cached.</summary>
    private static float Load(ArrayView<float> x, ArrayView<float> residual, ArrayView<float> cache, long offset,
        int j, int hasResidual, int cacheRow, float shift)
    {
        if (cacheRow != 0)
            return cache[j];
        float z = x[offset + j];
        if (hasResidual != 0)
            z += residual[offset + j];
        return z - shift;
    }
}
