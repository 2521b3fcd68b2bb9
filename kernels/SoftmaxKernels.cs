using GpuAttention.Problems;
using ILGPU;
using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>Fused masked softmax: y = softmax(scale·x + mask) over the last axis.</summary>
public static class SoftmaxKernels
{
    /// <summary>
    /// One group per row (grid = rows); any group size. Each thread keeps an online (max, sum) over
    /// its strided elements, then two group reductions combine them. Dynamic shared memory: the group
    /// size in floats for the reductions, plus Lk floats when <paramref name="cacheRow"/> is non-zero (else 1)
    /// (the row is then read from global memory once; otherwise the write pass recomputes the masked
    /// scores from global memory). NaN in a visible score makes the row's visible weights NaN.
    /// A row whose keys are all masked is written as zeros.
    /// </summary>
    public static void MaskedSoftmax(ArrayView<float> x, ArrayView<float> y, MaskViews mask, SoftmaxProblem p, int cacheRow)
    {
        int row = Grid.IdxX;
        int i = row % p.Lq;
        int head = row / p.Lq % p.Heads;
        int batch = row / p.Lq / p.Heads;
        long offset = (long)row * p.Lk;
        var shared = SharedMemory.GetDynamic<float>();
        var scratch = shared.SubView(0, Group.DimX);
        var cache = shared.SubView(Group.DimX);
        bool relu = p.Normalizer == (int)ScoreNormalizer.Relu;

        float localMax = float.NegativeInfinity, localSum = 0f;
        for (int j = Group.IdxX; j < p.Lk; j += Group.DimX)
        {
            float s = mask.Apply(p.Scale * x[offset + j], batch, head, i, j, p.Lq, p.Lk);
            if (cacheRow != 0)
                cache[j] = s;
            if (s == float.NegativeInfinity)
                continue;
            if (relu)
            {
                localSum += 1f;
                continue;
            }
            float newMax = GroupReduce.MaxPropagatingNaN(localMax, s);
            localSum = localSum * XMath.Exp(localMax - newMax) + XMath.Exp(s - newMax);
            localMax = newMax;
        }

        float rowMax = relu ? 0f : GroupReduce.Max(localMax, scratch);
        if (!relu && localMax != float.NegativeInfinity)
            localSum *= XMath.Exp(localMax - rowMax);
        float rowSum = GroupReduce.Sum(localSum, scratch);
        float inverse = rowSum == 0f ? 0f : 1f / rowSum;

        for (int j = Group.IdxX; j < p.Lk; j += Group.DimX)
        {
            float s = cacheRow != 0 ? cache[j] : mask.Apply(p.Scale * x[offset + j], batch, head, i, j, p.Lq, p.Lk);
            float weight;
            if (s == float.NegativeInfinity)
                weight = 0f;
            else if (relu)
                weight = ActivationMath.Relu(s) * inverse;
            else
                weight = XMath.Exp(s - rowMax) * inverse;
            y[offset + j] = weight;
        }
    }
}
