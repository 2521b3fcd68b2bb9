using GpuAttention.Problems;
using ILGPU;
using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>The fused attention kernel's tiling: a launch choice, not part of the problem.</summary>
public struct AttentionTiles
{
    /// <summary>Query rows per group (Br).</summary>
    public int RowTile;
    /// <summary>Keys per streamed tile (Bc), a multiple of <see cref="AttentionKernels.KeysPerThread"/>.</summary>
    public int KeyTile;
}

/// <summary>Fused scaled-dot-product attention, flash-attention style.</summary>
public static class AttentionKernels
{
    /// <summary>
    /// Output columns one thread may own, the capacity of the widest accumulator (<c>Pair&lt;Pair&lt;Columns8&gt;&gt;</c>):
    /// RowTile·headDim / groupSize must not exceed it (the launch shape is chosen so).
    /// </summary>
    public const int MaxAccumulators = 32;

    /// <summary>Scores one thread computes per pass: a query row against this many consecutive keys, so each query element read is used this often.</summary>
    public const int KeysPerThread = 4;

    /// <summary>Floats of dynamic shared memory the kernel needs for a tiling and group size.</summary>
    public static int SharedFloats(int rowTile, int keyTile, int headDim, int groupSize) =>
        rowTile * headDim + keyTile * (headDim + 1) + rowTile * (keyTile + 1) + 2 * groupSize;

    /// <summary>
    /// O = softmax(scale·Q·Kᵀ + mask)·V without materialising the Lq×Lk scores.
    /// Launch: grid (⌈Lq/RowTile⌉, batch·heads), one dimension of G threads with G a multiple of RowTile,
    /// dynamic shared memory <see cref="SharedFloats"/>; <typeparamref name="TAccumulator"/> holds at least
    /// ⌈d / (G / RowTile)⌉ columns. A group keeps its RowTile scaled query rows in shared memory and streams KeyTile keys
    /// at a time (K, then V, through one padded buffer). Per tile every thread computes <see cref="KeysPerThread"/> scores
    /// of one row at a time; the G / RowTile threads that share a row then fold its max and sum together (each over a
    /// stride of the keys, combined through shared memory — no warp shuffles, so the same code runs on OpenCL), keep the
    /// running max and sum in registers, rescale their slice of the output row and add P·V into it, in registers.
    /// Key tiles outside the causal / sliding window or past the batch row's valid length are never loaded. Rows whose
    /// keys are all masked get zeros and a −∞ log-sum-exp; a NaN score makes its row NaN.
    /// </summary>
    public static void FlashForward<TAccumulator>(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> o,
        ArrayView<float> logSumExp, MaskViews mask, AttentionProblem p, AttentionTiles tiles)
        where TAccumulator : struct, IRowAccumulator
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
        var partials = shared.SubView(rowTile * d + keyTile * kvStride + rowTile * scoreStride, 2 * threads);

        for (int e = thread; e < rowTile * d; e += threads)
        {
            int r = e / d, c = e % d;
            queries[e] = qBegin + r < p.Lq ? q[qBase + (long)(qBegin + r) * d + c] * p.Scale : 0f;
        }

        // This thread's row and its place among the row's threads: it owns output columns lane, lane + T, … (T threads per row).
        int threadsPerRow = threads / rowTile;
        int myRow = thread / threadsPerRow, lane = thread % threadsPerRow;
        int columns = (d - lane + threadsPerRow - 1) / threadsPerRow;
        var accumulator = default(TAccumulator);
        float runningMax = float.NegativeInfinity, runningSum = 0f;
        Group.Barrier();

        int keyBegin = mask.FirstVisibleKey(qBegin, p.Lq, p.Lk) / keyTile * keyTile;
        int keyEnd = mask.KeyEnd(batch, qEnd, p.Lq, p.Lk);
        for (int k0 = keyBegin; k0 < keyEnd; k0 += keyTile)
        {
            LoadKeyTile(k, keysOrValues, kvBase, k0, keyTile, d, p.Lk, thread, threads);
            Group.Barrier();
            Scores(queries, keysOrValues, scores, mask, p, rowTile, keyTile, qBegin, k0, batch, head, thread, threads);
            Group.Barrier();

            // The row's max over this tile, folded by its threads: each over keys lane, lane + T, …, then across the row.
            float tileMax = float.NegativeInfinity;
            for (int jj = lane; jj < keyTile; jj += threadsPerRow)
                tileMax = XMath.Max(tileMax, scores[myRow * scoreStride + jj]);
            partials[thread] = tileMax;
            Group.Barrier();
            for (int l = 0; l < threadsPerRow; l++)
                tileMax = XMath.Max(tileMax, partials[myRow * threadsPerRow + l]);
            float newMax = XMath.Max(runningMax, tileMax);
            float rescale = newMax == float.NegativeInfinity ? 1f : XMath.Exp(runningMax - newMax);
            float tileSum = 0f;
            for (int jj = lane; jj < keyTile; jj += threadsPerRow)
            {
                float s = scores[myRow * scoreStride + jj];
                float weight = s == float.NegativeInfinity ? 0f : XMath.Exp(s - newMax);
                scores[myRow * scoreStride + jj] = weight;
                tileSum += weight;
            }
            partials[threads + thread] = tileSum;
            LoadKeyTile(v, keysOrValues, kvBase, k0, keyTile, d, p.Lk, thread, threads);
            Group.Barrier();
            tileSum = 0f;
            for (int l = 0; l < threadsPerRow; l++)
                tileSum += partials[threads + myRow * threadsPerRow + l];
            runningMax = newMax;
            runningSum = runningSum * rescale + tileSum;

            accumulator.Scale(rescale);
            for (int jj = 0; jj < keyTile; jj++)
                accumulator.AddScaled(scores[myRow * scoreStride + jj], keysOrValues, jj * kvStride + lane, threadsPerRow, columns);
            Group.Barrier();
        }

        int row = qBegin + myRow;
        if (row >= p.Lq)
            return;
        accumulator.Store(o, qBase + (long)row * d + lane, threadsPerRow, columns, runningSum == 0f ? 0f : 1f / runningSum);
        if (p.WriteLogSumExp != 0 && lane == 0)
            logSumExp[(long)headIndex * p.Lq + row] = runningSum == 0f ? float.NegativeInfinity : runningMax + XMath.Log(runningSum);
    }

    /// <summary>
    /// The tile's masked scores, <see cref="KeysPerThread"/> consecutive keys of one row per thread and pass: the query
    /// element is read once per key group, and threads next to each other read the same query row (a broadcast) and keys
    /// one padded row apart (different banks).
    /// </summary>
    private static void Scores(ArrayView<float> queries, ArrayView<float> keys, ArrayView<float> scores, MaskViews mask,
        AttentionProblem p, int rowTile, int keyTile, int qBegin, int k0, int batch, int head, int thread, int threads)
    {
        int d = p.HeadDim, kvStride = d + 1, scoreStride = keyTile + 1, groups = keyTile / KeysPerThread;
        for (int e = thread; e < rowTile * groups; e += threads)
        {
            int r = e / groups, jj = e % groups * KeysPerThread;
            int i = qBegin + r;
            float dot0 = 0f, dot1 = 0f, dot2 = 0f, dot3 = 0f;
            int queryRow = r * d, keyRow = jj * kvStride;
            for (int c = 0; c < d; c++)
            {
                float x = queries[queryRow + c];
                dot0 += x * keys[keyRow + c];
                dot1 += x * keys[keyRow + kvStride + c];
                dot2 += x * keys[keyRow + 2 * kvStride + c];
                dot3 += x * keys[keyRow + 3 * kvStride + c];
            }
            int target = r * scoreStride + jj;
            scores[target] = Masked(dot0, mask, p, batch, head, i, k0 + jj);
            scores[target + 1] = Masked(dot1, mask, p, batch, head, i, k0 + jj + 1);
            scores[target + 2] = Masked(dot2, mask, p, batch, head, i, k0 + jj + 2);
            scores[target + 3] = Masked(dot3, mask, p, batch, head, i, k0 + jj + 3);
        }
    }

    /// <summary>The masked score of query i and key j, −∞ past either end.</summary>
    private static float Masked(float dot, MaskViews mask, AttentionProblem p, int batch, int head, int i, int j) =>
        i < p.Lq && j < p.Lk ? mask.Apply(dot, batch, head, i, j, p.Lq, p.Lk) : float.NegativeInfinity;

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
