using GpuAttention.Problems;
using ILGPU;
using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>The fused attention kernel's tiling: a launch choice, not part of the problem.</summary>
public struct AttentionTiles
{
    /// <summary>Query rows per group (Br).</summary>
    public int RowTile;
    /// <summary>Keys per streamed tile (Bc).</summary>
    public int KeyTile;
}

/// <summary>Fused scaled-dot-product attention, flash-attention style.</summary>
public static class AttentionKernels
{
    /// <summary>
    /// Output columns one thread may own: RowTile·headDim / groupSize must not exceed this
    /// (the launch shape is chosen so), keeping a thread's output row slice in registers.
    /// </summary>
    public const int MaxAccumulators = 32;

    /// <summary>Floats of dynamic shared memory the kernel needs for a tiling.</summary>
    public static int SharedFloats(int rowTile, int keyTile, int headDim) =>
        rowTile * headDim + keyTile * (headDim + 1) + rowTile * (keyTile + 1) + 3 * rowTile;

    /// <summary>
    /// O = softmax(scale·Q·Kᵀ + mask)·V without materialising the Lq×Lk scores.
    /// Launch: grid (⌈Lq/RowTile⌉, batch·heads), one dimension of G threads with G a multiple of RowTile,
    /// dynamic shared memory <see cref="SharedFloats"/>. A group keeps its RowTile scaled query rows in
    /// shared memory and streams KeyTile keys at a time (K, then V, through one padded buffer); per tile it
    /// computes the scores, updates each row's running max and sum (online softmax), rescales its
    /// accumulators and adds P·V. Key tiles outside the causal / sliding window or past the batch row's
    /// valid length are never loaded. Rows whose keys are all masked get zeros and a −∞ log-sum-exp.
    /// </summary>
    public static void FlashForward(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o,
        ArrayView<float> logSumExp, MaskViews mask, AttentionProblem p, AttentionTiles tiles)
    {
        int thread = Group.IdxX, threads = Group.DimX;
        int rowTile = tiles.RowTile, keyTile = tiles.KeyTile, d = p.HeadDim;
        int headIndex = Grid.IdxY, head = headIndex % p.Heads, batch = headIndex / p.Heads;
        int qBegin = Grid.IdxX * rowTile;
        int qEnd = XMath.Min(qBegin + rowTile, p.Lq);
        long qBase = (long)headIndex * p.Lq * d, kvBase = (long)headIndex * p.KeyCapacity * d;
        // One float of padding per row keeps threads that walk different rows on different banks.
        int kvStride = d + 1, scoreStride = keyTile + 1;

        var shared = SharedMemory.GetDynamic<float>();
        var queries = shared.SubView(0, rowTile * d);
        var keysOrValues = shared.SubView(rowTile * d, keyTile * kvStride);
        var scores = shared.SubView(rowTile * d + keyTile * kvStride, rowTile * scoreStride);
        var statistics = shared.SubView(rowTile * d + keyTile * kvStride + rowTile * scoreStride, 3 * rowTile);
        var rowMax = statistics.SubView(0, rowTile);
        var rowSum = statistics.SubView(rowTile, rowTile);
        var rowRescale = statistics.SubView(2 * rowTile, rowTile);

        for (int e = thread; e < rowTile * d; e += threads)
        {
            int r = e / d, c = e % d;
            queries[e] = qBegin + r < p.Lq ? q[qBase + (long)(qBegin + r) * d + c] * p.Scale : 0f;
        }
        for (int r = thread; r < rowTile; r += threads)
        {
            rowMax[r] = float.NegativeInfinity;
            rowSum[r] = 0f;
        }

        int threadsPerRow = threads / rowTile;
        int myRow = thread / threadsPerRow, lane = thread % threadsPerRow;
        var accumulators = LocalMemory.Allocate<float>(MaxAccumulators);
        for (int c = 0; c < MaxAccumulators; c++)
            accumulators[c] = 0f;
        Group.Barrier();

        int keyBegin = mask.FirstVisibleKey(qBegin, p.Lq, p.Lk) / keyTile * keyTile;
        int keyEnd = mask.KeyEnd(batch, qEnd, p.Lq, p.Lk);
        for (int k0 = keyBegin; k0 < keyEnd; k0 += keyTile)
        {
            LoadKeyTile(k, keysOrValues, kvBase, k0, keyTile, d, p.Lk, thread, threads);
            Group.Barrier();

            for (int e = thread; e < rowTile * keyTile; e += threads)
            {
                int r = e / keyTile, jj = e % keyTile;
                int i = qBegin + r, j = k0 + jj;
                float s = float.NegativeInfinity;
                if (i < p.Lq && j < p.Lk)
                {
                    float dot = 0f;
                    for (int c = 0; c < d; c++)
                        dot += queries[r * d + c] * keysOrValues[jj * kvStride + c];
                    s = mask.Apply(dot, batch, head, i, j, p.Lq, p.Lk);
                }
                scores[r * scoreStride + jj] = s;
            }
            Group.Barrier();

            for (int r = thread; r < rowTile; r += threads)
            {
                float oldMax = rowMax[r], tileMax = float.NegativeInfinity;
                for (int jj = 0; jj < keyTile; jj++)
                    tileMax = XMath.Max(tileMax, scores[r * scoreStride + jj]);
                float newMax = XMath.Max(oldMax, tileMax);
                float rescale = newMax == float.NegativeInfinity ? 1f : XMath.Exp(oldMax - newMax);
                float tileSum = 0f;
                for (int jj = 0; jj < keyTile; jj++)
                {
                    float s = scores[r * scoreStride + jj];
                    float weight = s == float.NegativeInfinity ? 0f : XMath.Exp(s - newMax);
                    scores[r * scoreStride + jj] = weight;
                    tileSum += weight;
                }
                rowMax[r] = newMax;
                rowSum[r] = rowSum[r] * rescale + tileSum;
                rowRescale[r] = rescale;
            }
            LoadKeyTile(v, keysOrValues, kvBase, k0, keyTile, d, p.Lk, thread, threads);
            Group.Barrier();

            float myRescale = rowRescale[myRow];
            for (int c = 0; c < MaxAccumulators; c++)
            {
                int dim = lane + c * threadsPerRow;
                if (dim < d)
                {
                    float sum = accumulators[c] * myRescale;
                    for (int jj = 0; jj < keyTile; jj++)
                        sum += scores[myRow * scoreStride + jj] * keysOrValues[jj * kvStride + dim];
                    accumulators[c] = sum;
                }
            }
            Group.Barrier();
        }

        int row = qBegin + myRow;
        if (row >= p.Lq)
            return;
        float total = rowSum[myRow];
        float inverse = total == 0f ? 0f : 1f / total;
        for (int c = 0; c < MaxAccumulators; c++)
        {
            int dim = lane + c * threadsPerRow;
            if (dim < d)
                o[qBase + (long)row * d + dim] = accumulators[c] * inverse;
        }
        if (p.WriteLogSumExp != 0 && lane == 0)
            logSumExp[(long)headIndex * p.Lq + row] =
                total == 0f ? float.NegativeInfinity : rowMax[myRow] + XMath.Log(total);
    }

    private static void LoadKeyTile(ArrayView<float> source, ArrayView<float> tile, long kvBase, int k0, int keyTile,
        int d, int lk, int thread, int threads)
    {
        for (int e = thread; e < keyTile * d; e += threads)
        {
            int jj = e / d, c = e % d;
            tile[jj * (d + 1) + c] = k0 + jj < lk ? source[kvBase + (long)(k0 + jj) * d + c] : 0f;
        }
    }
}
