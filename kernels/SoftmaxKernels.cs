using ILGPU;
using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>How the masked scores of a row are turned into weights.</summary>
public enum ScoreNormalizer
{
    /// <summary>softmax over the visible keys.</summary>
    Softmax = 0,
    /// <summary>ReLU(score) divided by the number of visible keys (the seed notes' ReLU normaliser).</summary>
    Relu = 1,
}

/// <summary>Problem description of the fused masked softmax over rows of x viewed as [batch, heads, Lq, Lk].</summary>
public struct SoftmaxParams
{
    /// <summary>Heads per batch entry.</summary>
    public int Heads;
    /// <summary>Query rows per head.</summary>
    public int Lq;
    /// <summary>Row length.</summary>
    public int Lk;
    /// <summary>Multiplies x before the mask is added.</summary>
    public float Scale;
    /// <summary>A <see cref="ScoreNormalizer"/> value.</summary>
    public int Normalizer;
    /// <summary>Non-zero when the dynamic shared memory holds a whole row, so global memory is read once.</summary>
    public int CacheRow;
}

/// <summary>Fused masked softmax: y = softmax(scale·x + mask) over the last axis.</summary>
public static class SoftmaxKernels
{
    /// <summary>
    /// One group per row (grid = rows); any group size. Each thread keeps an online (max, sum) over
    /// its strided elements, then two group reductions combine them. Dynamic shared memory: the group
    /// size in floats for the reductions, plus Lk floats when <see cref="SoftmaxParams.CacheRow"/> is set (else 1)
    /// (the row is then read from global memory once; otherwise the write pass recomputes the masked
    /// scores from global memory). NaN in a visible score makes the row's visible weights NaN.
    /// A row whose keys are all masked is written as zeros.
    /// </summary>
    public static void MaskedSoftmax(ArrayView<float> x, ArrayView<float> y, MaskParams mask, SoftmaxParams p)
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
            if (p.CacheRow != 0)
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
            float s = p.CacheRow != 0 ? cache[j] : mask.Apply(p.Scale * x[offset + j], batch, head, i, j, p.Lq, p.Lk);
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
