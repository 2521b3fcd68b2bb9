using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using GpuAttention.Problems;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// The managed fused attention, same contract as <see cref="AttentionKernels.FlashForward"/> with dot-product scores:
/// O = normalise(scale·Q·Kᵀ + mask)·V (online softmax, or the ReLU normaliser) without an Lq×Lk buffer. One task per (batch, head, tile of <see cref="RowTile"/> query rows). A task transposes its
/// scaled queries once, then streams <see cref="KeyTile"/> keys at a time and keeps the tile's scores transposed,
/// Sᵀ = K·Qᵀ [keys × queries]: K is read where it lies, the online softmax runs down the key rows with one vector
/// covering many queries (no horizontal reductions), and O += P·V reads P column-wise straight from Sᵀ and V where it
/// lies — both products on <see cref="CpuMicroKernel"/>. O is rescaled only for queries whose max grew. Key tiles
/// outside the tile's causal / sliding window or past the batch row's valid length are never read; tiles wholly
/// inside skip the mask. Decoding steps take a row at a time instead (<see cref="RowByRow"/>): a tile would be
/// almost all padding. Fully masked rows get zeros and a −∞ log-sum-exp; NaN spreads over its row.
/// </summary>
public static unsafe class CpuAttention
{
    /// <summary>Query rows per task: a multiple of every micro-kernel shape (6 or 8 rows, 16 or 32 columns).</summary>
    public const int RowTile = 96;

    /// <summary>Keys per streamed step.</summary>
    public const int KeyTile = 64;

    /// <summary>
    /// True when the queries run row by row: decoding steps (Lq ≤ 4), and short problems whose query tile would be
    /// mostly padding (Lq ≤ 16 over at most 256 keys, e.g. a small model's uncached decoding).
    /// </summary>
    public static bool RowByRow(int lq, int lk) => lq <= 4 || (lq <= 16 && lk <= 256);

    /// <summary>Runs every task; returns when O (and the log-sum-exp, when <paramref name="logSumExp"/> is not null) is written.</summary>
    public static void FlashForward(CpuExecution execution, float* q, float* k, float* v, float* o, float* logSumExp, HostMask mask,
        AttentionProblem p)
    {
        nint qAddress = (nint)q, kAddress = (nint)k, vAddress = (nint)v, oAddress = (nint)o, lseAddress = (nint)logSumExp;
        bool parallel = execution.Worthwhile(p.MultiplyAdds / 2);
        if (RowByRow(p.Lq, p.Lk))
        {
            execution.For(checked(p.BatchHeads * p.Lq), task =>
                QueryRow(execution, (float*)qAddress, (float*)kAddress, (float*)vAddress, (float*)oAddress, (float*)lseAddress, mask, p,
                    task / p.Lq, task % p.Lq), parallel);
            return;
        }
        int rowTiles = (p.Lq + RowTile - 1) / RowTile;
        execution.For(checked(p.BatchHeads * rowTiles), task =>
            QueryTile(execution, (float*)qAddress, (float*)kAddress, (float*)vAddress, (float*)oAddress, (float*)lseAddress, mask, p,
                task / rowTiles, task % rowTiles), parallel);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QueryTile(CpuExecution execution, float* q, float* k, float* v, float* o, float* logSumExp, HostMask mask,
        AttentionProblem p, int headIndex, int rowTile)
    {
        int rowsPerTile = CpuMicroKernel.Rows, columns = CpuMicroKernel.Columns;
        int d = p.HeadDim, paddedDim = RoundUp(d, columns);
        int head = headIndex % p.Heads, batch = headIndex / p.Heads;
        int qBegin = rowTile * RowTile, rows = Math.Min(RowTile, p.Lq - qBegin);
        // Queries are Sᵀ's columns (multiples of the micro-kernel's columns) and O's rows (multiples of its rows).
        int width = RoundUp(rows, rowsPerTile * columns / Gcd(rowsPerTile, columns));
        long qBase = (long)headIndex * p.Lq * d, kvBase = (long)p.KeyHeadIndex(headIndex) * p.KeyCapacity * d;

        // A key tile padded to whole micro-kernel rows (64 keys take 66 rows of 6).
        int tileRows = RoundUp(KeyTile, rowsPerTile);
        using var scratch = execution.Rent(ScratchSlot.Tile,
            (long)d * width + (long)tileRows * width + (long)RowTile * paddedDim + (long)tileRows * Math.Max(paddedDim, d) + 3L * width);
        float* queriesT = scratch.Pointer;
        float* scoresT = queriesT + d * width;              // [tileRows][width]
        float* output = scoresT + tileRows * width;         // [width ≤ RowTile][paddedDim]
        float* staged = output + RowTile * paddedDim;       // keys or values padded to whole micro-tiles
        float* runningMax = staged + tileRows * Math.Max(paddedDim, d);
        float* runningSum = runningMax + width;
        float* rescale = runningSum + width;

        for (int c = 0; c < d; c++)
        {
            float* column = queriesT + c * width;
            for (int r = 0; r < width; r++)
                column[r] = r < rows ? q[qBase + (long)(qBegin + r) * d + c] * p.Scale : 0f;
        }
        new Span<float>(output, width * paddedDim).Clear();
        new Span<float>(runningMax, width).Fill(float.NegativeInfinity);
        new Span<float>(runningSum, width).Clear();

        int validLength = mask.ValidLength(batch, p.Lk);
        int keyBegin = mask.Rules.FirstKey(qBegin, p.Lq, p.Lk);
        int keyEnd = mask.Rules.KeyEnd(qBegin + rows - 1, p.Lq, p.Lk, validLength);
        for (int k0 = keyBegin; k0 < keyEnd; k0 += KeyTile)
        {
            int keys = Math.Min(KeyTile, keyEnd - k0), paddedKeys = RoundUp(keys, rowsPerTile);
            float* keyRows = k + kvBase + (long)k0 * d;
            for (int j = 0; j < paddedKeys; j += rowsPerTile)
            {
                float* block = keyRows + (long)j * d;
                if (j + rowsPerTile > keys)
                    block = Stage(block, keys - j, rowsPerTile, d, d, staged);
                for (int c = 0; c < width; c += columns)
                    CpuMicroKernel.Tile(d, block, d, queriesT + c, width, scoresT + j * width + c, width, accumulate: false);
            }
            bool wholeTileVisible = mask.Additive == null
                && mask.Rules.FirstKey(qBegin + rows - 1, p.Lq, p.Lk) <= k0
                && mask.Rules.KeyEnd(qBegin, p.Lq, p.Lk, validLength) >= k0 + keys;
            if (!wholeTileVisible)
                ApplyMask(scoresT, width, mask, p, batch, head, qBegin, rows, k0, keys);
            for (int j = keys; j < paddedKeys; j++)
                new Span<float>(scoresT + j * width, width).Fill(float.NegativeInfinity);

            if (p.Normalizer == (int)ScoreNormalizer.Relu)
                ReluWeights(scoresT, width, paddedKeys, runningSum);
            else
            {
                OnlineSoftmax(scoresT, width, paddedKeys, runningMax, runningSum, rescale);
                for (int r = 0; r < rows; r++)
                {
                    if (rescale[r] != 1f)
                        CpuVector.Scale(output + r * paddedDim, rescale[r], output + r * paddedDim, paddedDim);
                }
            }

            float* valueRows = v + kvBase + (long)k0 * d;
            nint valueStride = d;
            if (paddedKeys != keys || paddedDim != d)
            {
                valueRows = Stage(valueRows, keys, paddedKeys, d, paddedDim, staged);
                valueStride = paddedDim;
            }
            for (int r = 0; r < rows; r += rowsPerTile)
            {
                for (int c = 0; c < paddedDim; c += columns)
                    CpuMicroKernel.Tile(paddedKeys, scoresT + r, 1, width, valueRows + c, valueStride, output + r * paddedDim + c,
                        paddedDim, accumulate: true);
            }
        }

        for (int r = 0; r < rows; r++)
        {
            float total = runningSum[r];
            CpuVector.Scale(output + r * paddedDim, total == 0f ? 0f : 1f / total, o + qBase + (long)(qBegin + r) * d, d);
            if (logSumExp != null)
                logSumExp[(long)headIndex * p.Lq + qBegin + r] = total == 0f ? float.NegativeInfinity : runningMax[r] + MathF.Log(total);
        }
    }

    /// <summary>
    /// Hides Sᵀ entries outside each query's window / valid length (−∞) and adds the additive mask. Walks key rows:
    /// the queries that see key j form one contiguous run (i'  − left ≤ j ≤ i' + right), so the rest are two vector fills.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ApplyMask(float* scoresT, int width, HostMask mask, AttentionProblem p, int batch, int head, int qBegin,
        int rows, int k0, int keys)
    {
        int validLength = mask.ValidLength(batch, p.Lk);
        long offset = (long)p.Lk - p.Lq;
        for (int j = 0; j < keys; j++)
        {
            int key = k0 + j;
            var row = new Span<float>(scoresT + (long)j * width, rows);
            if (key >= validLength)
            {
                row.Fill(float.NegativeInfinity);
                continue;
            }
            int first = (int)Math.Clamp(key - offset - mask.Rules.WindowRight - qBegin, 0, rows);
            int last = (int)Math.Clamp(key - offset + mask.Rules.WindowLeft - qBegin + 1, first, rows);
            row[..first].Fill(float.NegativeInfinity);
            row[last..].Fill(float.NegativeInfinity);
            if (mask.Additive == null)
                continue;
            for (int r = first; r < last; r++)
                row[r] += mask.AdditiveRow(batch, head, qBegin + r, p.Lk)[key];
        }
    }

    /// <summary>
    /// Folds a tile of Sᵀ into each query's running max and sum, leaving the weights P = e^(s − max) in its place and
    /// each query's rescale factor for O (1 when the max did not move). A NaN score makes its query's max NaN, which
    /// then spreads to its weights, sum and output. One vector covers 16 (AVX-512) or 8 queries.
    /// </summary>
    private static void OnlineSoftmax(float* scoresT, int width, int keys, float* runningMax, float* runningSum, float* rescale)
    {
        if (CpuFeatures.Vector512Paths)
            OnlineSoftmax<Vector512<float>, CpuVector.Lanes512>(scoresT, width, keys, runningMax, runningSum, rescale);
        else
            OnlineSoftmax<Vector256<float>, CpuVector.Lanes256>(scoresT, width, keys, runningMax, runningSum, rescale);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OnlineSoftmax<TVector, TLanes>(float* scoresT, int width, int keys, float* runningMax, float* runningSum,
        float* rescale) where TVector : struct where TLanes : struct, CpuVector.ILanes<TVector>
    {
        var lanes = default(TLanes);
        var negativeInfinity = lanes.Constant(float.NegativeInfinity);
        var zero = lanes.Constant(0f);
        for (int r = 0; r < width; r += lanes.Count)
        {
            var tileMax = negativeInfinity;
            var nan = zero;
            for (int j = 0; j < keys; j++)
            {
                var s = lanes.Load(scoresT + j * width + r);
                tileMax = lanes.Max(tileMax, s);
                nan = lanes.Or(nan, lanes.Not(lanes.EqualsMask(s, s)));
            }
            var oldMax = lanes.Load(runningMax + r);
            var newMax = lanes.Select(lanes.Or(nan, lanes.Not(lanes.EqualsMask(oldMax, oldMax))), lanes.Constant(float.NaN),
                lanes.Max(oldMax, tileMax));
            // A query that has seen no visible key yet keeps max −∞: shift by 0 so its weights are e^−∞ = 0, not NaN.
            var shift = lanes.Select(lanes.EqualsMask(newMax, negativeInfinity), zero, newMax);
            var sum = zero;
            for (int j = 0; j < keys; j++)
            {
                float* row = scoresT + j * width + r;
                var weight = lanes.Exp(lanes.Subtract(lanes.Load(row), shift));
                lanes.Store(weight, row);
                sum = lanes.Add(sum, weight);
            }
            var factor = lanes.Exp(lanes.Subtract(oldMax, shift));
            lanes.Store(lanes.MultiplyAdd(lanes.Load(runningSum + r), factor, sum), runningSum + r);
            lanes.Store(newMax, runningMax + r);
            lanes.Store(factor, rescale + r);
        }
    }

    /// <summary>
    /// The ReLU normaliser's weights for a tile of Sᵀ: ReLU(s) in place (NaN kept, −∞ to 0), and each query's count of
    /// visible keys added to its running sum (the divisor at the end). No max, so O is never rescaled.
    /// </summary>
    private static void ReluWeights(float* scoresT, int width, int keys, float* visibleCounts)
    {
        if (CpuFeatures.Vector512Paths)
            ReluWeights<Vector512<float>, CpuVector.Lanes512>(scoresT, width, keys, visibleCounts);
        else
            ReluWeights<Vector256<float>, CpuVector.Lanes256>(scoresT, width, keys, visibleCounts);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ReluWeights<TVector, TLanes>(float* scoresT, int width, int keys, float* visibleCounts)
        where TVector : struct where TLanes : struct, CpuVector.ILanes<TVector>
    {
        var lanes = default(TLanes);
        var negativeInfinity = lanes.Constant(float.NegativeInfinity);
        var zero = lanes.Constant(0f);
        var one = lanes.Constant(1f);
        for (int r = 0; r < width; r += lanes.Count)
        {
            var count = lanes.Load(visibleCounts + r);
            for (int j = 0; j < keys; j++)
            {
                float* row = scoresT + j * width + r;
                var s = lanes.Load(row);
                count = lanes.Add(count, lanes.Select(lanes.EqualsMask(s, negativeInfinity), zero, one));
                lanes.Store(lanes.Select(lanes.EqualsMask(s, s), lanes.Max(s, zero), s), row);
            }
            lanes.Store(count, visibleCounts + r);
        }
    }

    /// <summary>
    /// Copies <paramref name="count"/> rows of <paramref name="width"/> floats into rows of <paramref name="stride"/>,
    /// zero-filling up to <paramref name="paddedRows"/> rows and the stride: whole micro-tiles without reading past the data.
    /// </summary>
    private static float* Stage(float* source, int count, int paddedRows, int width, int stride, float* staged)
    {
        for (int j = 0; j < paddedRows; j++)
        {
            float* row = staged + (long)j * stride;
            int copied = j < count ? width : 0;
            if (copied > 0)
                new ReadOnlySpan<float>(source + (long)j * width, width).CopyTo(new Span<float>(row, width));
            new Span<float>(row + copied, stride - copied).Clear();
        }
        return staged;
    }

    /// <summary>One query row over all its visible keys: dot products, softmax over the row, then Σ p·v.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QueryRow(CpuExecution execution, float* q, float* k, float* v, float* o, float* logSumExp, HostMask mask,
        AttentionProblem p, int headIndex, int i)
    {
        int d = p.HeadDim, head = headIndex % p.Heads, batch = headIndex / p.Heads;
        long kvBase = (long)p.KeyHeadIndex(headIndex) * p.KeyCapacity * d;
        float* output = o + ((long)headIndex * p.Lq + i) * d;
        var (begin, end) = mask.VisibleKeys(batch, i, p.Lq, p.Lk);
        int count = Math.Max(0, end - begin);
        using var scratch = execution.Rent(ScratchSlot.Tile, d + (long)count);
        float* query = scratch.Pointer;
        float* weights = query + d;
        CpuVector.Scale(q + ((long)headIndex * p.Lq + i) * d, p.Scale, query, d);
        float* additive = mask.AdditiveRow(batch, head, i, p.Lk);
        float max = float.NegativeInfinity;
        bool nan = false;
        for (int j = 0; j < count; j++)
        {
            float s = CpuVector.Dot(query, k + kvBase + (long)(begin + j) * d, d);
            if (additive != null)
                s += additive[begin + j];
            weights[j] = s;
            max = MathF.Max(max, s);
            nan |= float.IsNaN(s);
        }
        new Span<float>(output, d).Clear();
        if (p.Normalizer == (int)ScoreNormalizer.Relu)
        {
            int visible = 0;
            for (int j = 0; j < count; j++)
                visible += weights[j] == float.NegativeInfinity ? 0 : 1;
            for (int j = 0; j < count && visible > 0; j++)
                CpuVector.AddScaled(output, ActivationMath.Relu(weights[j]) / visible, v + kvBase + (long)(begin + j) * d, d);
            return;
        }
        if (nan || max == float.NegativeInfinity)
        {
            if (nan)
                new Span<float>(output, d).Fill(float.NaN);
            if (logSumExp != null)
                logSumExp[(long)headIndex * p.Lq + i] = nan ? float.NaN : float.NegativeInfinity;
            return;
        }
        float sum = CpuVector.ExpShifted(weights, max, count);
        for (int j = 0; j < count; j++)
            CpuVector.AddScaled(output, weights[j] / sum, v + kvBase + (long)(begin + j) * d, d);
        if (logSumExp != null)
            logSumExp[(long)headIndex * p.Lq + i] = max + MathF.Log(sum);
    }

    private static int RoundUp(int value, int multiple) => (value + multiple - 1) / multiple * multiple;

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);
}
