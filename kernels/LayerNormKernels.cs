using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Algorithms.ScanReduceOperations;

namespace GpuAttention.Kernels;

/// <summary>Layer normalisation over the last axis, optionally fused with the residual add.</summary>
public static class LayerNormKernels
{
    /// <summary>
    /// y = (z − mean(z)) / sqrt(var(z) + eps) · gain + bias with z = x + residual (residual when
    /// <paramref name="hasResidual"/> is non-zero). One group per row, any group size; the variance is
    /// taken about the mean in a second pass (not E[z²] − mean²) so large offsets do not cancel.
    /// Dynamic shared memory: <paramref name="width"/> floats when <paramref name="cacheRow"/> is
    /// non-zero (global memory read once), otherwise 1.
    /// </summary>
    public static void LayerNorm(ArrayView<float> x, ArrayView<float> residual, ArrayView<float> gain,
        ArrayView<float> bias, ArrayView<float> y, int width, float epsilon, int hasResidual, int cacheRow)
    {
        long offset = (long)Grid.IdxX * width;
        var cache = SharedMemory.GetDynamic<float>();

        float localSum = 0f;
        for (int j = Group.IdxX; j < width; j += Group.DimX)
        {
            float z = x[offset + j];
            if (hasResidual != 0)
                z += residual[offset + j];
            if (cacheRow != 0)
                cache[j] = z;
            localSum += z;
        }
        float mean = GroupExtensions.AllReduce<float, AddFloat>(localSum) / width;

        float localSquares = 0f;
        for (int j = Group.IdxX; j < width; j += Group.DimX)
        {
            float d = Load(x, residual, cache, offset, j, hasResidual, cacheRow) - mean;
            localSquares += d * d;
        }
        float variance = GroupExtensions.AllReduce<float, AddFloat>(localSquares) / width;
        float inverseStd = XMath.Rsqrt(variance + epsilon);

        for (int j = Group.IdxX; j < width; j += Group.DimX)
        {
            float z = Load(x, residual, cache, offset, j, hasResidual, cacheRow);
            y[offset + j] = (z - mean) * inverseStd * gain[j] + bias[j];
        }
    }

    private static float Load(ArrayView<float> x, ArrayView<float> residual, ArrayView<float> cache, long offset,
        int j, int hasResidual, int cacheRow)
    {
        if (cacheRow != 0)
            return cache[j];
        float z = x[offset + j];
        return hasResidual != 0 ? z + residual[offset + j] : z;
    }
}
