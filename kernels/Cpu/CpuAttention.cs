using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// The managed fused attention, same contract as <see cref="AttentionKernels.FlashForward"/>: O = softmax(scale·Q·Kᵀ + mask)·V
/// without an Lq×Lk buffer. One task per (batch, head, tile of <see cref="RowTile"/> query rows); a task keeps its
/// scaled queries, running max/sum and output rows in its workspace (~70 KB at d = 64, resident in L2) and streams
/// <see cref="KeyTile"/> keys at a time: S = Q·Kᵀ and O += P·V run on <see cref="CpuMicroKernel.Tile"/>, the online
/// softmax rescales O only when a row's max grows. Keys outside the tile's causal / sliding window or past the batch
/// row's valid length are never read. Fully masked rows get zeros and a −∞ log-sum-exp; NaN spreads over its row.
/// </summary>
public static unsafe class CpuAttention
{
    /// <summary>Query rows per task (a multiple of the micro-kernel's 6 rows).</summary>
    public const int RowTile = 8 * CpuMicroKernel.Rows;

    /// <summary>Keys per streamed step (a multiple of the micro-kernel's 16 columns).</summary>
    public const int KeyTile = 4 * CpuMicroKernel.Columns;

    private const int Columns = CpuMicroKernel.Columns;

    /// <summary>Runs every (batch, head, query tile) task; returns when O (and the log-sum-exp) is written.</summary>
    public static void FlashForward(float* q, float* k, float* v, float* o, float* logSumExp, HostMask mask, AttentionParams p, int batch)
    {
        int rowTiles = (p.Lq + RowTile - 1) / RowTile;
        nint qAddress = (nint)q, kAddress = (nint)k, vAddress = (nint)v, oAddress = (nint)o, lseAddress = (nint)logSumExp;
        CpuParallel.For(checked(batch * p.Heads * rowTiles), task =>
            QueryTile((float*)qAddress, (float*)kAddress, (float*)vAddress, (float*)oAddress, (float*)lseAddress, mask, p,
                task / rowTiles, task % rowTiles),
            CpuParallel.Worthwhile((long)batch * p.Heads * p.Lq * p.Lk * p.HeadDim));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QueryTile(float* q, float* k, float* v, float* o, float* logSumExp, HostMask mask, AttentionParams p,
        int headIndex, int rowTile)
    {
        int d = p.HeadDim, paddedDim = (d + Columns - 1) / Columns * Columns;
        int head = headIndex % p.Heads, batch = headIndex / p.Heads;
        int qBegin = rowTile * RowTile, rows = Math.Min(RowTile, p.Lq - qBegin);
        int blocks = (rows + CpuMicroKernel.Rows - 1) / CpuMicroKernel.Rows;
        long qBase = (long)headIndex * p.Lq * d, kvBase = (long)headIndex * p.KeyCapacity * d;

        float* queries = CpuWorkspace.Get(CpuWorkspace.Slot.Tile,
            (long)RowTile * d + (long)d * KeyTile + RowTile * KeyTile + (long)KeyTile * paddedDim + (long)RowTile * paddedDim + 2 * RowTile);
        float* keysT = queries + RowTile * d;                 // [d][KeyTile]
        float* scores = keysT + d * KeyTile;                  // [RowTile][KeyTile]
        float* values = scores + RowTile * KeyTile;           // [KeyTile][paddedDim]
        float* output = values + KeyTile * paddedDim;         // [RowTile][paddedDim]
        float* rowMax = output + RowTile * paddedDim;
        float* rowSum = rowMax + RowTile;

        for (int r = 0; r < blocks * CpuMicroKernel.Rows; r++)
        {
            if (r < rows)
                CpuSoftmax.Scale(q + qBase + (long)(qBegin + r) * d, p.Scale, queries + r * d, d);
            else
                new Span<float>(queries + r * d, d).Clear();
            new Span<float>(output + r * paddedDim, paddedDim).Clear();
            rowMax[r] = float.NegativeInfinity;
            rowSum[r] = 0f;
        }

        int validLength = mask.ValidLengths?[batch] ?? p.Lk;
        int keyBegin = MaskWindow.Begin(qBegin, p.Lq, p.Lk, mask.WindowLeft);
        int keyEnd = MaskWindow.End(qBegin + rows - 1, p.Lq, p.Lk, mask.WindowRight, validLength);
        for (int k0 = keyBegin; k0 < keyEnd; k0 += KeyTile)
        {
            int keys = Math.Min(KeyTile, keyEnd - k0), paddedKeys = (keys + Columns - 1) / Columns * Columns;
            LoadKeysTransposed(k + kvBase + (long)k0 * d, keysT, keys, paddedKeys, d);
            for (int block = 0; block < blocks; block++)
            {
                int r = block * CpuMicroKernel.Rows;
                for (int j = 0; j < paddedKeys; j += Columns)
                    CpuMicroKernel.Tile(d, queries + r * d, d, keysT + j, KeyTile, scores + r * KeyTile + j, KeyTile, accumulate: false);
            }
            for (int r = 0; r < rows; r++)
                OnlineSoftmaxRow(scores + r * KeyTile, output + r * paddedDim, ref rowMax[r], ref rowSum[r], mask, p,
                    batch, head, qBegin + r, k0, keys, paddedKeys, paddedDim);
            LoadValues(v + kvBase + (long)k0 * d, values, keys, paddedKeys, d, paddedDim);
            for (int block = 0; block < blocks; block++)
            {
                int r = block * CpuMicroKernel.Rows;
                for (int c = 0; c < paddedDim; c += Columns)
                    CpuMicroKernel.Tile(paddedKeys, scores + r * KeyTile, KeyTile, values + c, paddedDim, output + r * paddedDim + c,
                        paddedDim, accumulate: true);
            }
        }

        for (int r = 0; r < rows; r++)
        {
            long row = qBase + (long)(qBegin + r) * d;
            float total = rowSum[r];
            CpuSoftmax.Scale(output + r * paddedDim, total == 0f ? 0f : 1f / total, o + row, d);
            if (logSumExp != null)
                logSumExp[(long)headIndex * p.Lq + qBegin + r] = total == 0f ? float.NegativeInfinity : rowMax[r] + MathF.Log(total);
        }
    }

    /// <summary>
    /// Masks one row of a key tile's scores, folds it into the row's running max and sum, rescales the row's output
    /// when the max grew, and leaves the tile's weights P in place of the scores (zeros where hidden or padded).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void OnlineSoftmaxRow(float* s, float* output, ref float max, ref float sum, HostMask mask, AttentionParams p,
        int batch, int head, int i, int k0, int keys, int paddedKeys, int paddedDim)
    {
        var (begin, end) = mask.VisibleKeys(batch, i, p.Lq, p.Lk);
        int first = Math.Clamp(begin - k0, 0, keys), last = Math.Clamp(end - k0, first, keys);
        for (int j = 0; j < first; j++)
            s[j] = float.NegativeInfinity;
        for (int j = last; j < paddedKeys; j++)
            s[j] = float.NegativeInfinity;
        float* additive = mask.AdditiveRow(batch, head, i, p.Lk);
        if (additive != null)
        {
            for (int j = first; j < last; j++)
                s[j] += additive[k0 + j];
        }
        float tileMax = float.NegativeInfinity;
        bool nan = false;
        for (int j = first; j < last; j++)
        {
            tileMax = MathF.Max(tileMax, s[j]);
            nan |= float.IsNaN(s[j]);
        }
        float newMax = nan ? float.NaN : MathF.Max(max, tileMax);
        if (newMax == float.NegativeInfinity)
        {
            new Span<float>(s, paddedKeys).Clear();
            return;
        }
        float tileSum = CpuSoftmax.ExpShifted(s, newMax, paddedKeys);
        float rescale = max == float.NegativeInfinity ? 0f : MathF.Exp(max - newMax);
        if (rescale != 1f)
            CpuSoftmax.Scale(output, rescale, output, paddedDim);
        sum = sum * rescale + tileSum;
        max = newMax;
    }

    /// <summary>keysT[c·KeyTile + j] = K[j, c] for j &lt; keys; zero columns up to paddedKeys.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LoadKeysTransposed(float* source, float* keysT, int keys, int paddedKeys, int d)
    {
        for (int j = 0; j < keys; j++)
        {
            float* key = source + (long)j * d;
            for (int c = 0; c < d; c++)
                keysT[c * KeyTile + j] = key[c];
        }
        for (int c = 0; c < d; c++)
            for (int j = keys; j < paddedKeys; j++)
                keysT[c * KeyTile + j] = 0f;
    }

    /// <summary>values[j·paddedDim + c] = V[j, c]; zeros in the padding rows and columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LoadValues(float* source, float* values, int keys, int paddedKeys, int d, int paddedDim)
    {
        for (int j = 0; j < paddedKeys; j++)
        {
            float* row = values + j * paddedDim;
            if (j < keys)
                new ReadOnlySpan<float>(source + (long)j * d, d).CopyTo(new Span<float>(row, d));
            new Span<float>(row + (j < keys ? d : 0), j < keys ? paddedDim - d : paddedDim).Clear();
        }
    }
}
