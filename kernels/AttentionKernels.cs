using GpuAttention.Problems;
using ILGPU;
using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>The fused attention kernel's tiling: a launch choice, not part of the problem.</summary>
public struct AttentionTiles
{
    /// <summary>Query rows per group (Br), a power of two.</summary>
    public int RowTile;
    /// <summary>Keys per streamed tile (Bc), a multiple of <see cref="AttentionKernels.KeysPerThread"/>.</summary>
    public int KeyTile;
    /// <summary>log2 of the threads that share a query row (group size / RowTile, a power of two).</summary>
    public int ThreadsPerRowLog2;
}

/// <summary>Fused attention, flash-attention style: scaled dot-product or additive scores, softmax or ReLU normaliser.</summary>
public static class AttentionKernels
{
    /// <summary>
    /// Output columns one thread may own, the capacity of the widest accumulator (<c>Pair&lt;Pair&lt;Columns8&gt;&gt;</c>):
    /// RowTile·headDim / groupSize must not exceed it (the launch shape is chosen so).
    /// </summary>
    public const int MaxAccumulators = 32;

    /// <summary>Scores one thread computes per pass: a query row against this many consecutive keys, so each query element read is used this often.</summary>
    public const int KeysPerThread = 4;

    /// <summary>
    /// Floats of one staged value row: each of the T threads of a query row reads its <paramref name="capacity"/> columns
    /// (c = i·T + lane) from a block of its own, padded by one float so that the T blocks start on different banks.
    /// </summary>
    public static int ValueRowFloats(int threadsPerRow, int capacity) => threadsPerRow * (capacity + 1);

    /// <summary>
    /// Floats of dynamic shared memory the kernel needs for a tiling, the width of the rows it scores (the head dimension,
    /// or the additive form's projected width), group size and accumulator capacity (which covers the value rows).
    /// </summary>
    public static int SharedFloats(int rowTile, int keyTile, int scoreWidth, int groupSize, int capacity) =>
        rowTile * scoreWidth + keyTile * Math.Max(scoreWidth + 1, ValueRowFloats(groupSize / rowTile, capacity))
        + rowTile * (keyTile + 1) + 2 * groupSize;

    /// <summary>
    /// O = normalise(score(Q, K) + mask)·V without materialising the Lq×Lk scores: <typeparamref name="TScore"/> is the
    /// scaled dot product (<see cref="DotProductScore"/>) or the additive form over projected rows
    /// (<see cref="AdditiveScore"/>, with <paramref name="scoreVector"/> its w), <typeparamref name="TWeights"/> the
    /// online softmax (<see cref="SoftmaxWeights"/>) or the ReLU normaliser (<see cref="ReluWeights"/>, which needs no
    /// running max and no rescaling). Q and K rows are <see cref="AttentionProblem.HeadDim"/> wide, V and O rows
    /// <see cref="AttentionProblem.ValueDim"/>.
    /// Launch: grid (⌈Lq/RowTile⌉, batch·heads), one dimension of G threads with G a multiple of RowTile,
    /// dynamic shared memory <see cref="SharedFloats"/>; <typeparamref name="TAccumulator"/> holds at least
    /// ⌈ValueDim / (G / RowTile)⌉ columns. A group keeps its RowTile scaled query rows in shared memory and streams KeyTile keys
    /// at a time (K, then V, through one buffer: K rows padded by a float, V rows laid out per thread, see
    /// <see cref="ValueRowFloats"/>, so that a thread's P·V reads are at constant offsets, zero past d). Per tile every thread computes <see cref="KeysPerThread"/> scores
    /// of one row at a time; the G / RowTile threads that share a row then fold its max and sum together (each over a
    /// stride of the keys, combined through shared memory — no warp shuffles, so the same code runs on OpenCL), keep the
    /// running max and sum in registers, rescale their slice of the output row and add P·V into it, in registers.
    /// Key tiles outside the causal / sliding window or past the batch row's valid length are never loaded. Rows whose
    /// keys are all masked get zeros and a −∞ log-sum-exp (softmax only); a NaN score makes its row NaN.
    /// </summary>
    public static void FlashForward<TAccumulator, TScore, TWeights>(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v,
        ArrayView<float> o, ArrayView<float> logSumExp, ArrayView<float> scoreVector, MaskViews mask, AttentionProblem p,
        AttentionTiles tiles)
        where TAccumulator : struct, IRowAccumulator
        where TScore : struct, IAttentionScore
        where TWeights : struct, IScoreWeights
    {
        int thread = Group.IdxX, threads = Group.DimX;
        int rowTile = tiles.RowTile, keyTile = tiles.KeyTile, d = p.HeadDim, dv = p.ValueDim, rowThreadsLog2 = tiles.ThreadsPerRowLog2;
        int capacity = default(TAccumulator).Capacity;
        var weights = default(TWeights);
        int headIndex = Grid.IdxY, head = headIndex % p.Heads, batch = headIndex / p.Heads;
        int qBegin = Grid.IdxX * rowTile;
        int qEnd = XMath.Min(qBegin + rowTile, p.Lq);
        int keyHeadIndex = p.KeyHeadIndex(headIndex);
        long qBase = (long)headIndex * p.Lq * d, kBase = (long)keyHeadIndex * p.KeyCapacity * d;
        long vBase = (long)keyHeadIndex * p.KeyCapacity * dv, oBase = (long)headIndex * p.Lq * dv;
        // One float of padding per key row keeps threads that walk different rows on different banks.
        int kvStride = d + 1, scoreStride = keyTile + 1;
        int threadsPerRow = 1 << rowThreadsLog2, valueStride = ValueRowFloats(threadsPerRow, capacity);
        int tileFloats = keyTile * XMath.Max(kvStride, valueStride);

        var shared = SharedMemory.GetDynamic<float>();
        var queries = shared.SubView(0, rowTile * d);
        var keysOrValues = shared.SubView(rowTile * d, tileFloats);
        var scores = shared.SubView(rowTile * d + tileFloats, rowTile * scoreStride);
        var partials = shared.SubView(rowTile * d + tileFloats + rowTile * scoreStride, 2 * threads);

        for (int e = thread; e < rowTile * d; e += threads)
        {
            int r = e / d, c = e % d;
            queries[e] = qBegin + r < p.Lq ? q[qBase + (long)(qBegin + r) * d + c] * p.Scale : 0f;
        }

        // This thread's row and its place among the row's threads: it owns output columns lane, lane + T, … (T threads per row).
        int myRow = thread >> rowThreadsLog2, lane = thread & (threadsPerRow - 1);
        int columns = (dv - lane + threadsPerRow - 1) / threadsPerRow;
        var accumulator = default(TAccumulator);
        float runningMax = float.NegativeInfinity, runningSum = 0f;
        Group.Barrier();

        int keyBegin = mask.FirstVisibleKey(qBegin, p.Lq, p.Lk) / keyTile * keyTile;
        int keyEnd = mask.KeyEnd(batch, qEnd, p.Lq, p.Lk);
        for (int k0 = keyBegin; k0 < keyEnd; k0 += keyTile)
        {
            LoadKeyTile(k, keysOrValues, kBase, k0, keyTile, d, p.Lk, thread, threads);
            Group.Barrier();
            Scores<TScore>(queries, keysOrValues, scoreVector, scores, mask, p, rowTile, keyTile, qBegin, k0, batch, head, thread, threads);
            Group.Barrier();

            float newMax = runningMax, rescale = 1f;
            if (weights.TracksMax)
            {
                // The row's max over this tile, folded by its threads: each over keys lane, lane + T, …, then across the row.
                float tileMax = float.NegativeInfinity;
                for (int jj = lane; jj < keyTile; jj += threadsPerRow)
                    tileMax = XMath.Max(tileMax, scores[myRow * scoreStride + jj]);
                partials[thread] = tileMax;
                Group.Barrier();
                for (int l = 0; l < threadsPerRow; l++)
                    tileMax = XMath.Max(tileMax, partials[myRow * threadsPerRow + l]);
                newMax = XMath.Max(runningMax, tileMax);
                rescale = newMax == float.NegativeInfinity ? 1f : XMath.Exp(runningMax - newMax);
            }
            float tileSum = 0f;
            for (int jj = lane; jj < keyTile; jj += threadsPerRow)
            {
                float s = scores[myRow * scoreStride + jj];
                float weight = weights.Weight(s, newMax);
                scores[myRow * scoreStride + jj] = weight;
                tileSum += weights.Share(s, weight);
            }
            partials[threads + thread] = tileSum;
            LoadValueTile(v, keysOrValues, vBase, k0, keyTile, dv, p.Lk, thread, threads, rowThreadsLog2, capacity);
            Group.Barrier();
            tileSum = 0f;
            for (int l = 0; l < threadsPerRow; l++)
                tileSum += partials[threads + myRow * threadsPerRow + l];
            runningMax = newMax;
            runningSum = runningSum * rescale + tileSum;

            if (weights.TracksMax)
                accumulator.Scale(rescale);
            var myValues = keysOrValues.SubView(lane * (capacity + 1));
            var myWeights = scores.SubView(myRow * scoreStride);
            for (int jj = 0; jj < keyTile; jj++)
                accumulator.AddScaled(myWeights[jj], myValues.SubView(jj * valueStride));
            Group.Barrier();
        }

        int row = qBegin + myRow;
        if (row >= p.Lq)
            return;
        accumulator.Store(o, oBase + (long)row * dv + lane, threadsPerRow, columns, runningSum == 0f ? 0f : 1f / runningSum);
        if (p.WriteLogSumExp != 0 && lane == 0)
            logSumExp[(long)headIndex * p.Lq + row] = runningSum == 0f ? float.NegativeInfinity : runningMax + XMath.Log(runningSum);
    }

    /// <summary>
    /// The tile's masked scores, <see cref="KeysPerThread"/> consecutive keys of one row per thread and pass: the query
    /// element is read once per key group, and threads next to each other read the same query row (a broadcast) and keys
    /// one padded row apart (different banks).
    /// </summary>
    private static void Scores<TScore>(ArrayView<float> queries, ArrayView<float> keys, ArrayView<float> scoreVector,
        ArrayView<float> scores, MaskViews mask, AttentionProblem p, int rowTile, int keyTile, int qBegin, int k0, int batch,
        int head, int thread, int threads)
        where TScore : struct, IAttentionScore
    {
        int d = p.HeadDim, kvStride = d + 1, scoreStride = keyTile + 1, groups = keyTile / KeysPerThread;
        for (int e = thread; e < rowTile * groups; e += threads)
        {
            int r = e / groups, jj = e % groups * KeysPerThread;
            int i = qBegin + r;
            // The positions start here and advance as loop variables inside the score: ILGPU's O2 code placement moves
            // values computed before a loop to their uses inside it, so positions derived from e (a division) would be
            // recomputed for every element.
            var s = default(TScore).Four(queries, keys, scoreVector, r * d, jj * kvStride, kvStride, d);
            int target = r * scoreStride + jj;
            scores[target] = Masked(s.S0, mask, p, batch, head, i, k0 + jj);
            scores[target + 1] = Masked(s.S1, mask, p, batch, head, i, k0 + jj + 1);
            scores[target + 2] = Masked(s.S2, mask, p, batch, head, i, k0 + jj + 2);
            scores[target + 3] = Masked(s.S3, mask, p, batch, head, i, k0 + jj + 3);
        }
    }

    /// <summary>
    /// The unfused additive scores, S[row, j] = Σₐ wₐ·tanh(q'[row, a] + k'[pair, j, a]) for every (row, key) — the
    /// baseline the fused additive attention is checked and timed against. Index (j, row) over [Lk, batch·heads·Lq];
    /// q' is [batch·heads·Lq, width], k' [batch·heads·Lk, width], S [batch·heads·Lq, Lk]. Masks are the softmax's to apply.
    /// </summary>
    public static void AdditiveScores(Index2D index, ArrayView<float> projectedQ, ArrayView<float> projectedK,
        ArrayView<float> scoreVector, ArrayView<float> scores, int lq, int lk, int width)
    {
        int j = index.X, row = index.Y, pair = row / lq;
        long queryAt = (long)row * width, keyAt = ((long)pair * lk + j) * width;
        float sum = 0f;
        for (int c = 0; c < width; c++, queryAt++, keyAt++)
            sum += scoreVector[c] * ActivationMath.Tanh(projectedQ[queryAt] + projectedK[keyAt]);
        scores[(long)row * lk + j] = sum;
    }

    /// <summary>The masked score of query i and key j, −∞ past either end.</summary>
    private static float Masked(float dot, MaskViews mask, AttentionProblem p, int batch, int head, int i, int j) =>
        i < p.Lq && j < p.Lk ? mask.Apply(dot, batch, head, i, j, p.Lq, p.Lk) : float.NegativeInfinity;

    /// <summary>
    /// Stages keys k0 … k0 + KeyTile − 1 into rows of d + 1 floats, zero past Lk. Element e = jj·d + c of the tile is
    /// thread e mod G's; every position advances as a loop variable (one division starts them): values computed before
    /// the loop would be moved into it by ILGPU's O2 code placement, 64-bit products included.
    /// </summary>
    private static void LoadKeyTile(ArrayView<float> source, ArrayView<float> tile, long kvBase, int k0, int keyTile,
        int d, int lk, int thread, int threads)
    {
        int jj = thread / d, c = thread - jj * d;
        int at = thread + jj;
        for (long from = kvBase + (long)k0 * d + thread; jj < keyTile; from += threads)
        {
            tile[at] = k0 + jj < lk ? source[from] : 0f;
            at += threads;
            c += threads;
            while (c >= d)
            {
                c -= d;
                jj++;
                at++;
            }
        }
    }

    /// <summary>
    /// Stages values k0 … k0 + KeyTile − 1 for the P·V product: column c (c &lt; T·capacity, zero past d or Lk) of row jj
    /// goes to jj·<see cref="ValueRowFloats"/> + (c mod T)·(capacity + 1) + c / T, so that the thread owning column c
    /// (lane c mod T) finds its columns side by side. Global reads stay contiguous across threads. G and T·capacity are
    /// multiples of T, so a thread's c mod T never changes; positions advance as loop variables, as in
    /// <see cref="LoadKeyTile"/>.
    /// </summary>
    private static void LoadValueTile(ArrayView<float> source, ArrayView<float> tile, long kvBase, int k0, int keyTile,
        int d, int lk, int thread, int threads, int threadsPerRowLog2, int capacity)
    {
        int threadsPerRow = 1 << threadsPerRowLog2;
        int width = threadsPerRow * capacity, rowFloats = ValueRowFloats(threadsPerRow, capacity);
        int jj = thread / width, c = thread - jj * width;
        int rowAt = jj * rowFloats + (c & (threadsPerRow - 1)) * (capacity + 1);
        for (long rowFrom = kvBase + (long)(k0 + jj) * d; jj < keyTile;)
        {
            tile[rowAt + (c >> threadsPerRowLog2)] = c < d && k0 + jj < lk ? source[rowFrom + c] : 0f;
            c += threads;
            while (c >= width)
            {
                c -= width;
                jj++;
                rowAt += rowFloats;
                rowFrom += d;
            }
        }
    }
}
