using GpuAttention.Problems;
using ILGPU;
using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>
/// A warp's share of the head dimension in <see cref="TensorCoreAttentionKernels.FlashForward"/>, held in registers: per 16
/// columns, the warp's 16 query rows as an mma A fragment and its 16 output rows as two fp32 accumulators. ILGPU does not
/// unroll loops and a register array indexed in a loop lives in local memory, so the head dimension is a type:
/// <see cref="HeadSlice16"/> paired by <see cref="HeadPair{T}"/> (64 columns: three pairings, 128: four), every loop over it
/// a recursion that specialisation unrolls.
/// </summary>
public interface IHeadSlices
{
    /// <summary>Columns of the head dimension held.</summary>
    int Width { get; }

    /// <summary>Loads the query fragments of the 16 staged rows starting at element <paramref name="rowsStart"/> (rows <paramref name="stride"/> apart), columns <paramref name="column"/> ….</summary>
    void LoadQueries(ArrayView<ushort> shared, int rowsStart, int stride, int column, int lane, ArrayView<int> matrixScratch);

    /// <summary>S += Q·Kᵀ over this share's columns, K staged as key rows from element <paramref name="keysStart"/>.</summary>
    void Score<TFormat>(ref KeyTileScores scores, ArrayView<ushort> shared, int keysStart, int stride, int column, int lane,
        ArrayView<float> mmaScratch, ArrayView<int> matrixScratch) where TFormat : struct, IMmaFormat;

    /// <summary>O += P·V for 16 keys (P: their A fragment), V staged as key rows: <paramref name="valuesStart"/> is the first key's row.</summary>
    void AddValues<TFormat>(MmaFragmentA weights, ArrayView<ushort> shared, int valuesStart, int stride, int column, int lane,
        ArrayView<float> mmaScratch, ArrayView<int> matrixScratch) where TFormat : struct, IMmaFormat;

    /// <summary>The output's row g by <paramref name="low"/>, row g + 8 by <paramref name="high"/>.</summary>
    void ScaleRows(float low, float high);

    /// <summary>Writes the lane's output elements times the rows' factors; a row past Lq (its offset negative) is dropped.</summary>
    void Store<TOutput>(TOutput output, long lowRowAt, long highRowAt, int column, int lane, float low, float high)
        where TOutput : struct, IAttentionOutput;
}

/// <summary>16 columns of the head dimension: the query fragment and the two 16×8 output accumulators.</summary>
public struct HeadSlice16 : IHeadSlices
{
    private MmaFragmentA query;
    private MmaAccumulator outputLow, outputHigh;

    /// <inheritdoc />
    public readonly int Width => 16;

    /// <inheritdoc />
    public void LoadQueries(ArrayView<ushort> shared, int rowsStart, int stride, int column, int lane, ArrayView<int> matrixScratch)
    {
        // Matrix i = lane / 8 holds rows 0–7 or 8–15 (i mod 2) of columns 0–7 or 8–15 (i / 2): A's quarters in fragment order.
        int matrix = lane >> 3, row = (lane & 7) + ((matrix & 1) << 3);
        query = WarpMatrix.LoadX4<AsStored>(shared, rowsStart + row * stride + column + ((matrix >> 1) << 3), matrixScratch).AsFragmentA();
    }

    /// <inheritdoc />
    public readonly void Score<TFormat>(ref KeyTileScores scores, ArrayView<ushort> shared, int keysStart, int stride, int column,
        int lane, ArrayView<float> mmaScratch, ArrayView<int> matrixScratch) where TFormat : struct, IMmaFormat =>
        scores.Accumulate<TFormat>(query, shared, keysStart, stride, column, lane, mmaScratch, matrixScratch);

    /// <inheritdoc />
    public void AddValues<TFormat>(MmaFragmentA weights, ArrayView<ushort> shared, int valuesStart, int stride, int column, int lane,
        ArrayView<float> mmaScratch, ArrayView<int> matrixScratch) where TFormat : struct, IMmaFormat
    {
        // V is B (k = key, n = column) stored k-major: the transposed load gives the fragments of columns 0–7 and 8–15.
        int matrix = lane >> 3, key = (lane & 7) + ((matrix & 1) << 3);
        var (low, high) = WarpMatrix.LoadX4<Transposed>(shared, valuesStart + key * stride + column + ((matrix >> 1) << 3), matrixScratch).AsFragmentsB();
        WarpMma.MultiplyAccumulate<TFormat>(ref outputLow, weights, low, mmaScratch);
        WarpMma.MultiplyAccumulate<TFormat>(ref outputHigh, weights, high, mmaScratch);
    }

    /// <inheritdoc />
    public void ScaleRows(float low, float high)
    {
        outputLow.C0 *= low;
        outputLow.C1 *= low;
        outputLow.C2 *= high;
        outputLow.C3 *= high;
        outputHigh.C0 *= low;
        outputHigh.C1 *= low;
        outputHigh.C2 *= high;
        outputHigh.C3 *= high;
    }

    /// <inheritdoc />
    public readonly void Store<TOutput>(TOutput output, long lowRowAt, long highRowAt, int column, int lane, float low, float high)
        where TOutput : struct, IAttentionOutput
    {
        int at = column + MmaLayout.CCol(lane, 0);
        if (lowRowAt >= 0)
        {
            output.StorePair(lowRowAt + at, outputLow.C0 * low, outputLow.C1 * low);
            output.StorePair(lowRowAt + at + 8, outputHigh.C0 * low, outputHigh.C1 * low);
        }
        if (highRowAt >= 0)
        {
            output.StorePair(highRowAt + at, outputLow.C2 * high, outputLow.C3 * high);
            output.StorePair(highRowAt + at + 8, outputHigh.C2 * high, outputHigh.C3 * high);
        }
    }
}

/// <summary>Two shares side by side: columns 0 … Width/2 − 1 in the first, the rest in the second.</summary>
public struct HeadPair<T> : IHeadSlices where T : struct, IHeadSlices
{
    // Zero to start with, and changed only through their own methods, which the compiler does not count as assignments.
#pragma warning disable CS0649
    private T first, second;
#pragma warning restore CS0649

    /// <inheritdoc />
    public readonly int Width => 2 * first.Width;

    /// <inheritdoc />
    public void LoadQueries(ArrayView<ushort> shared, int rowsStart, int stride, int column, int lane, ArrayView<int> matrixScratch)
    {
        first.LoadQueries(shared, rowsStart, stride, column, lane, matrixScratch);
        second.LoadQueries(shared, rowsStart, stride, column + first.Width, lane, matrixScratch);
    }

    /// <inheritdoc />
    public readonly void Score<TFormat>(ref KeyTileScores scores, ArrayView<ushort> shared, int keysStart, int stride, int column,
        int lane, ArrayView<float> mmaScratch, ArrayView<int> matrixScratch) where TFormat : struct, IMmaFormat
    {
        first.Score<TFormat>(ref scores, shared, keysStart, stride, column, lane, mmaScratch, matrixScratch);
        second.Score<TFormat>(ref scores, shared, keysStart, stride, column + first.Width, lane, mmaScratch, matrixScratch);
    }

    /// <inheritdoc />
    public void AddValues<TFormat>(MmaFragmentA weights, ArrayView<ushort> shared, int valuesStart, int stride, int column, int lane,
        ArrayView<float> mmaScratch, ArrayView<int> matrixScratch) where TFormat : struct, IMmaFormat
    {
        first.AddValues<TFormat>(weights, shared, valuesStart, stride, column, lane, mmaScratch, matrixScratch);
        second.AddValues<TFormat>(weights, shared, valuesStart, stride, column + first.Width, lane, mmaScratch, matrixScratch);
    }

    /// <inheritdoc />
    public void ScaleRows(float low, float high)
    {
        first.ScaleRows(low, high);
        second.ScaleRows(low, high);
    }

    /// <inheritdoc />
    public readonly void Store<TOutput>(TOutput output, long lowRowAt, long highRowAt, int column, int lane, float low, float high)
        where TOutput : struct, IAttentionOutput
    {
        first.Store(output, lowRowAt, highRowAt, column, lane, low, high);
        second.Store(output, lowRowAt, highRowAt, column + first.Width, lane, low, high);
    }
}

/// <summary>
/// A warp's scores against one key tile (<see cref="TensorCoreAttentionKernels.KeyTile"/> = 64 keys): eight 16×8 fp32
/// accumulators, keys 8j … 8j + 7 in <c>sj</c>. Lane (g, t) holds rows g and g + 8 (elements 0–1 and 2–3), keys 8j + 2t and
/// + 1. Written out per accumulator, as registers need.
/// </summary>
public struct KeyTileScores
{
    private MmaAccumulator s0, s1, s2, s3, s4, s5, s6, s7;

    /// <summary>S += Q·Kᵀ for 16 columns of the head dimension: <paramref name="query"/> is their A fragment, K staged as key rows.</summary>
    public void Accumulate<TFormat>(MmaFragmentA query, ArrayView<ushort> shared, int keysStart, int stride, int column, int lane,
        ArrayView<float> mmaScratch, ArrayView<int> matrixScratch) where TFormat : struct, IMmaFormat
    {
        // Kᵀ is B (k = column, n = key) stored n-major: key rows as stored give the fragments of keys n … n + 7 and n + 8 … n + 15.
        int matrix = lane >> 3, keyRow = (lane & 7) + ((matrix >> 1) << 3), at = keysStart + keyRow * stride + column + ((matrix & 1) << 3);
        var (b0, b1) = WarpMatrix.LoadX4<AsStored>(shared, at, matrixScratch).AsFragmentsB();
        WarpMma.MultiplyAccumulate<TFormat>(ref s0, query, b0, mmaScratch);
        WarpMma.MultiplyAccumulate<TFormat>(ref s1, query, b1, mmaScratch);
        var (b2, b3) = WarpMatrix.LoadX4<AsStored>(shared, at + 16 * stride, matrixScratch).AsFragmentsB();
        WarpMma.MultiplyAccumulate<TFormat>(ref s2, query, b2, mmaScratch);
        WarpMma.MultiplyAccumulate<TFormat>(ref s3, query, b3, mmaScratch);
        var (b4, b5) = WarpMatrix.LoadX4<AsStored>(shared, at + 32 * stride, matrixScratch).AsFragmentsB();
        WarpMma.MultiplyAccumulate<TFormat>(ref s4, query, b4, mmaScratch);
        WarpMma.MultiplyAccumulate<TFormat>(ref s5, query, b5, mmaScratch);
        var (b6, b7) = WarpMatrix.LoadX4<AsStored>(shared, at + 48 * stride, matrixScratch).AsFragmentsB();
        WarpMma.MultiplyAccumulate<TFormat>(ref s6, query, b6, mmaScratch);
        WarpMma.MultiplyAccumulate<TFormat>(ref s7, query, b7, mmaScratch);
    }

    /// <summary>Every score times <paramref name="factor"/>: a tile the mask leaves whole.</summary>
    public void Scale(float factor)
    {
        ScaleOne(ref s0, factor);
        ScaleOne(ref s1, factor);
        ScaleOne(ref s2, factor);
        ScaleOne(ref s3, factor);
        ScaleOne(ref s4, factor);
        ScaleOne(ref s5, factor);
        ScaleOne(ref s6, factor);
        ScaleOne(ref s7, factor);
    }

    /// <summary>
    /// Each score s of query i, key j becomes (mask applied to scale·s)·log₂e, −∞ for a hidden key or one past Lq or Lk:
    /// the mask at the fragment's own coordinates. The window and the valid length leave each row an interval of visible
    /// keys, [<see cref="MaskRules.FirstKey"/>, <see cref="MaskRules.KeyEnd"/>), worked out once per row, so an element costs
    /// two comparisons (and its additive value when there is an additive mask). <paramref name="row"/> is the lane's row g,
    /// <paramref name="key"/> its key 2t of the tile.
    /// </summary>
    public void Mask(MaskViews mask, AttentionProblem p, int batch, int head, int row, int key, float scale)
    {
        int validLength = mask.ValidLength(batch, p.Lk);
        var low = VisibleKeys.Of(mask, p, batch, head, row, validLength);
        var high = VisibleKeys.Of(mask, p, batch, head, row + 8, validLength);
        MaskOne(ref s0, mask, low, high, key, scale);
        MaskOne(ref s1, mask, low, high, key + 8, scale);
        MaskOne(ref s2, mask, low, high, key + 16, scale);
        MaskOne(ref s3, mask, low, high, key + 24, scale);
        MaskOne(ref s4, mask, low, high, key + 32, scale);
        MaskOne(ref s5, mask, low, high, key + 40, scale);
        MaskOne(ref s6, mask, low, high, key + 48, scale);
        MaskOne(ref s7, mask, low, high, key + 56, scale);
    }

    /// <summary>The lane's largest score in row g and in row g + 8.</summary>
    public readonly (float Low, float High) RowMax() =>
        (XMath.Max(XMath.Max(XMath.Max(Max01(s0), Max01(s1)), XMath.Max(Max01(s2), Max01(s3))),
                XMath.Max(XMath.Max(Max01(s4), Max01(s5)), XMath.Max(Max01(s6), Max01(s7)))),
         XMath.Max(XMath.Max(XMath.Max(Max23(s0), Max23(s1)), XMath.Max(Max23(s2), Max23(s3))),
                XMath.Max(XMath.Max(Max23(s4), Max23(s5)), XMath.Max(Max23(s6), Max23(s7)))));

    /// <summary>Each score s becomes 2^(s − the row's max); returns the lane's sums of row g and row g + 8.</summary>
    public (float Low, float High) Exponentiate(float low, float high)
    {
        var sums = (Low: 0f, High: 0f);
        ExpOne(ref s0, low, high, ref sums.Low, ref sums.High);
        ExpOne(ref s1, low, high, ref sums.Low, ref sums.High);
        ExpOne(ref s2, low, high, ref sums.Low, ref sums.High);
        ExpOne(ref s3, low, high, ref sums.Low, ref sums.High);
        ExpOne(ref s4, low, high, ref sums.Low, ref sums.High);
        ExpOne(ref s5, low, high, ref sums.Low, ref sums.High);
        ExpOne(ref s6, low, high, ref sums.Low, ref sums.High);
        ExpOne(ref s7, low, high, ref sums.Low, ref sums.High);
        return sums;
    }

    /// <summary>
    /// O += P·V with P these weights rounded to 16 bits in registers: the accumulators of keys 16i … 16i + 15 are, element for
    /// element, the A fragment of those keys (rows g, g + 8; columns 2t, 2t + 1 and + 8), so P never goes through shared memory.
    /// </summary>
    public readonly void MultiplyValues<TFormat, TPacking, THead>(ref THead head, ArrayView<ushort> shared, int valuesStart, int stride,
        int lane, ArrayView<float> mmaScratch, ArrayView<int> matrixScratch)
        where TFormat : struct, IMmaFormat where TPacking : struct, IPairPacking where THead : struct, IHeadSlices
    {
        head.AddValues<TFormat>(Weights<TPacking>(s0, s1), shared, valuesStart, stride, 0, lane, mmaScratch, matrixScratch);
        head.AddValues<TFormat>(Weights<TPacking>(s2, s3), shared, valuesStart + 16 * stride, stride, 0, lane, mmaScratch, matrixScratch);
        head.AddValues<TFormat>(Weights<TPacking>(s4, s5), shared, valuesStart + 32 * stride, stride, 0, lane, mmaScratch, matrixScratch);
        head.AddValues<TFormat>(Weights<TPacking>(s6, s7), shared, valuesStart + 48 * stride, stride, 0, lane, mmaScratch, matrixScratch);
    }

    private static MmaFragmentA Weights<TPacking>(MmaAccumulator low, MmaAccumulator high) where TPacking : struct, IPairPacking
    {
        var packing = default(TPacking);
        return new MmaFragmentA
        {
            R0 = packing.Pack(low.C0, low.C1),
            R1 = packing.Pack(low.C2, low.C3),
            R2 = packing.Pack(high.C0, high.C1),
            R3 = packing.Pack(high.C2, high.C3),
        };
    }

    private static void ScaleOne(ref MmaAccumulator c, float factor)
    {
        c.C0 *= factor;
        c.C1 *= factor;
        c.C2 *= factor;
        c.C3 *= factor;
    }

    private static void MaskOne(ref MmaAccumulator c, MaskViews mask, VisibleKeys low, VisibleKeys high, int key, float scale)
    {
        c.C0 = low.Masked(c.C0 * scale, key, mask);
        c.C1 = low.Masked(c.C1 * scale, key + 1, mask);
        c.C2 = high.Masked(c.C2 * scale, key, mask);
        c.C3 = high.Masked(c.C3 * scale, key + 1, mask);
    }

    private static float Max01(MmaAccumulator c) => XMath.Max(c.C0, c.C1);

    private static float Max23(MmaAccumulator c) => XMath.Max(c.C2, c.C3);

    private static void ExpOne(ref MmaAccumulator c, float low, float high, ref float lowSum, ref float highSum)
    {
        c.C0 = FastMath.Exp2(c.C0 - low);
        c.C1 = FastMath.Exp2(c.C1 - low);
        c.C2 = FastMath.Exp2(c.C2 - high);
        c.C3 = FastMath.Exp2(c.C3 - high);
        lowSum += c.C0 + c.C1;
        highSum += c.C2 + c.C3;
    }
}

/// <summary>One query row's visible keys, [First, End), and where its additive mask row starts (when there is one).</summary>
public struct VisibleKeys
{
    /// <summary>First visible key.</summary>
    public int First;
    /// <summary>One past the last visible key (≤ Lk; ≤ First when none, or for a row past Lq).</summary>
    public int End;
    /// <summary>Element offset of the row in the additive mask.</summary>
    public long AdditiveRow;

    /// <summary>Row <paramref name="i"/>'s interval by the mask's rules (empty past Lq).</summary>
    public static VisibleKeys Of(MaskViews mask, AttentionProblem p, int batch, int head, int i, int validLength) => i < p.Lq
        ? new VisibleKeys
        {
            First = mask.Rules.FirstKey(i, p.Lq, p.Lk),
            End = mask.Rules.KeyEnd(i, p.Lq, p.Lk, validLength),
            AdditiveRow = mask.Rules.HasAdditive != 0 ? mask.Rules.AdditiveRow(batch, head, i, p.Lk) : 0,
        }
        : default;

    /// <summary>(scaled + the additive mask)·log₂e for a visible key <paramref name="j"/>, else −∞.</summary>
    public readonly float Masked(float scaled, int j, MaskViews mask)
    {
        if (j < First || j >= End)
            return float.NegativeInfinity;
        if (mask.Rules.HasAdditive != 0)
            scaled += mask.Additive[AdditiveRow + j];
        return scaled * TensorCoreAttentionKernels.Log2E;
    }
}

/// <summary>Where the attention output goes, as compile-time behaviour: two adjacent columns of a row at once.</summary>
public interface IAttentionOutput
{
    /// <summary>Output elements <paramref name="at"/> and <paramref name="at"/> + 1.</summary>
    void StorePair(long at, float first, float second);
}

/// <summary>An fp32 output.</summary>
public struct F32Output : IAttentionOutput
{
    /// <summary>The output, [batch, heads, Lq, d].</summary>
    public ArrayView<float> Values;

    /// <inheritdoc />
    public readonly void StorePair(long at, float first, float second)
    {
        Values[at] = first;
        Values[at + 1] = second;
    }
}

/// <summary>A 16-bit output, rounded to nearest-even by <typeparamref name="TPacking"/>.</summary>
public struct SixteenBitOutput<TPacking> : IAttentionOutput where TPacking : struct, IPairPacking
{
    /// <summary>The output's bits, [batch, heads, Lq, d].</summary>
    public ArrayView<ushort> Values;

    /// <inheritdoc />
    public readonly void StorePair(long at, float first, float second)
    {
        uint packed = default(TPacking).Pack(first, second);
        Values[at] = MmaLayout.Unpack(packed, 0);
        Values[at + 1] = MmaLayout.Unpack(packed, 1);
    }
}

/// <summary>
/// Scaled dot-product attention on the tensor cores, FlashAttention-2 style: Q, K and V in a 16-bit format, softmax
/// statistics and accumulation in fp32.
/// </summary>
public static class TensorCoreAttentionKernels
{
    /// <summary>Keys per streamed tile.</summary>
    public const int KeyTile = 64;

    /// <summary>Query rows per warp: one m16 fragment.</summary>
    public const int RowsPerWarp = 16;

    /// <summary>log₂ e: scores are kept in base-2 units so that each exponential is one ex2.</summary>
    public const float Log2E = 1.44269504088896341f;

    /// <summary>16-bit elements per staged row: the head dimension and 8 of padding, so ldmatrix's 8 rows fall on different banks.</summary>
    public static int StagedRowHalves(int headDim) => headDim + 8;

    /// <summary>
    /// Dynamic shared bytes of a launch: a K tile and a V tile (the queries are staged once through the V tile), plus the
    /// portable primitives' scratch per warp where they run (not on CUDA).
    /// </summary>
    public static int SharedBytes(int headDim, int warps, bool onCuda) =>
        StagedBytes(headDim)
        + (onCuda ? 0 : warps * (WarpMma.ScratchFloatsPerWarp * sizeof(float) + WarpMatrix.ScratchIntsPerWarp * sizeof(int) + WarpQuad.ScratchFloatsPerWarp * sizeof(float)));

    private static int StagedBytes(int headDim) => 2 * KeyTile * StagedRowHalves(headDim) * sizeof(ushort);

    /// <summary>
    /// O = softmax(scale·Q·Kᵀ + mask)·V for Q [batch, heads, Lq, d], K and V [batch, KeyHeads, KeyCapacity, d] (the first Lk
    /// rows attended to; query head h reads key head h / (heads / KeyHeads)), d = <typeparamref name="THead"/>'s width, and
    /// the optional log-sum-exp [batch, heads, Lq].
    /// Launch: grid (⌈Lq / (16·W)⌉, batch·heads), groups of 32·W threads (W ≤ 4 warps), dynamic shared memory of
    /// <see cref="SharedBytes"/>.
    /// </summary>
    /// <remarks>
    /// The group owns 16·W query rows, 16 per warp, so warps never share partial sums (FlashAttention-2's split). Each warp
    /// loads its queries once into A fragments (registers). Per tile of 64 keys the group stages K and V with 8-byte loads
    /// into padded rows, then each warp computes its 16×64 scores with mma (ldmatrix from the K rows), applies the mask at
    /// the fragment's coordinates (only on tiles the mask does not leave whole), folds each row's max across the four
    /// lanes that hold it, exponentiates in base 2, rescales its output accumulators and adds P·V: the score accumulators,
    /// rounded to 16 bits in registers, are P's A fragments. Each lane keeps partial row sums, folded once at the end, where
    /// the 1/ℓ normalisation is applied. Key tiles outside the causal / sliding window or past the batch row's valid length
    /// are never loaded; fully masked rows get zeros and a −∞ log-sum-exp.
    /// </remarks>
    public static void FlashForward<TFormat, TPacking, THead, TOutput>(ArrayView<ushort> q, ArrayView<ushort> k, ArrayView<ushort> v,
        TOutput output, ArrayView<float> logSumExp, MaskViews mask, AttentionProblem p)
        where TFormat : struct, IMmaFormat
        where TPacking : struct, IPairPacking
        where THead : struct, IHeadSlices
        where TOutput : struct, IAttentionOutput
    {
        var head = default(THead);
        int d = head.Width, stride = StagedRowHalves(d);
        int thread = Group.IdxX, threads = Group.DimX, lane = thread & (MmaLayout.WarpSize - 1), warp = thread / MmaLayout.WarpSize;
        int warps = threads / MmaLayout.WarpSize, blockRows = warps * RowsPerWarp;
        int headIndex = Grid.IdxY, headInBatch = headIndex % p.Heads, batch = headIndex / p.Heads;
        int qBegin = Grid.IdxX * blockRows, qEnd = XMath.Min(qBegin + blockRows, p.Lq);
        long qBase = (long)headIndex * p.Lq * d, kvBase = (long)p.KeyHeadIndex(headIndex) * p.KeyCapacity * d;

        var shared = SharedMemory.GetDynamic<ushort>();
        // One dynamic buffer seen two ways: the CPU accelerator gives each GetDynamic<T> element type a buffer of its own.
        var sharedQuads = shared.Cast<ulong>();
        int stagedFloats = StagedBytes(d) / sizeof(float);
        var mmaScratch = SharedMemory.GetDynamic<float>().SubView(stagedFloats, warps * WarpMma.ScratchFloatsPerWarp);
        var quadScratch = SharedMemory.GetDynamic<float>().SubView(stagedFloats + warps * WarpMma.ScratchFloatsPerWarp, warps * WarpQuad.ScratchFloatsPerWarp);
        var matrixScratch = SharedMemory.GetDynamic<int>().SubView(stagedFloats + warps * (WarpMma.ScratchFloatsPerWarp + WarpQuad.ScratchFloatsPerWarp));
        const int keysStart = 0;
        int valuesStart = KeyTile * stride;

        // The queries pass through the V tile into registers; the tile is free again after the barrier that follows.
        int quadsPerRow = d / 4;
        Stage(q.Cast<ulong>(), sharedQuads, valuesStart / 4, (qBase + (long)qBegin * d) / 4, p.Lq - qBegin, blockRows, d, stride, thread, threads);
        Group.Barrier();
        head.LoadQueries(shared, valuesStart + warp * RowsPerWarp * stride, stride, 0, lane, matrixScratch);
        Group.Barrier();

        // Lane (g, t) of warp w holds rows g and g + 8 of the warp's 16 (MmaLayout.CRow), keys 2t, 2t + 1 of each 8.
        int rowLow = qBegin + warp * RowsPerWarp + (lane >> 2), keyInTile = (lane & 3) << 1;
        float maxLow = float.NegativeInfinity, maxHigh = float.NegativeInfinity, sumLow = 0f, sumHigh = 0f;
        float scaleLog2 = p.Scale * Log2E;
        int validLength = mask.ValidLength(batch, p.Lk);
        int keyBegin = mask.FirstVisibleKey(qBegin, p.Lq, p.Lk) / KeyTile * KeyTile;
        int keyEnd = mask.KeyEnd(batch, qEnd, p.Lq, p.Lk);
        // Keys every row of the group sees whole: from the last row's first visible key to the first row's end.
        int wholeFrom = mask.FirstVisibleKey(qEnd - 1, p.Lq, p.Lk), wholeTo = mask.Rules.KeyEnd(qBegin, p.Lq, p.Lk, validLength);
        var kQuads = k.Cast<ulong>();
        var vQuads = v.Cast<ulong>();
        // The tile's first key row advances as a loop variable: ILGPU's O2 code placement would otherwise move the base's
        // computation (two divisions in KeyHeadIndex) into the staging loops, once per element.
        long tileQuad = kvBase / 4 + (long)keyBegin * quadsPerRow;
        for (int k0 = keyBegin; k0 < keyEnd; k0 += KeyTile, tileQuad += KeyTile * quadsPerRow)
        {
            Stage(kQuads, sharedQuads, keysStart, tileQuad, p.Lk - k0, KeyTile, d, stride, thread, threads);
            Stage(vQuads, sharedQuads, valuesStart / 4, tileQuad, p.Lk - k0, KeyTile, d, stride, thread, threads);
            Group.Barrier();

            var scores = default(KeyTileScores);
            head.Score<TFormat>(ref scores, shared, keysStart, stride, 0, lane, mmaScratch, matrixScratch);
            if (mask.Rules.HasAdditive == 0 && k0 >= wholeFrom && k0 + KeyTile <= wholeTo)
                scores.Scale(scaleLog2);
            else
                scores.Mask(mask, p, batch, headInBatch, rowLow, k0 + keyInTile, p.Scale);

            var (tileMaxLow, tileMaxHigh) = scores.RowMax();
            (tileMaxLow, tileMaxHigh) = WarpQuad.Fold<MaxFold>(tileMaxLow, tileMaxHigh, quadScratch);
            float newMaxLow = XMath.Max(maxLow, tileMaxLow), newMaxHigh = XMath.Max(maxHigh, tileMaxHigh);
            // A row with no visible key so far keeps max −∞: its weights are 2^−∞ = 0 against a stand-in max of 0.
            float rescaleLow = newMaxLow == float.NegativeInfinity ? 1f : FastMath.Exp2(maxLow - newMaxLow);
            float rescaleHigh = newMaxHigh == float.NegativeInfinity ? 1f : FastMath.Exp2(maxHigh - newMaxHigh);
            var (tileSumLow, tileSumHigh) = scores.Exponentiate(
                newMaxLow == float.NegativeInfinity ? 0f : newMaxLow, newMaxHigh == float.NegativeInfinity ? 0f : newMaxHigh);
            maxLow = newMaxLow;
            maxHigh = newMaxHigh;
            sumLow = sumLow * rescaleLow + tileSumLow;
            sumHigh = sumHigh * rescaleHigh + tileSumHigh;
            head.ScaleRows(rescaleLow, rescaleHigh);
            scores.MultiplyValues<TFormat, TPacking, THead>(ref head, shared, valuesStart, stride, lane, mmaScratch, matrixScratch);
            // The staged tiles are overwritten next: every warp must be done reading them.
            Group.Barrier();
        }

        (sumLow, sumHigh) = WarpQuad.Fold<SumFold>(sumLow, sumHigh, quadScratch);
        int rowHigh = rowLow + 8;
        long lowAt = rowLow < p.Lq ? qBase + (long)rowLow * d : -1, highAt = rowHigh < p.Lq ? qBase + (long)rowHigh * d : -1;
        head.Store(output, lowAt, highAt, 0, lane, sumLow == 0f ? 0f : 1f / sumLow, sumHigh == 0f ? 0f : 1f / sumHigh);
        if (p.WriteLogSumExp != 0 && (lane & 3) == 0)
        {
            long lseBase = (long)headIndex * p.Lq;
            if (rowLow < p.Lq)
                logSumExp[lseBase + rowLow] = sumLow == 0f ? float.NegativeInfinity : (maxLow + XMath.Log2(sumLow)) / Log2E;
            if (rowHigh < p.Lq)
                logSumExp[lseBase + rowHigh] = sumHigh == 0f ? float.NegativeInfinity : (maxHigh + XMath.Log2(sumHigh)) / Log2E;
        }
    }

    /// <summary>
    /// Stages <paramref name="rows"/> rows of a [·, d] operand, starting at 8-byte quad <paramref name="firstRowQuad"/>, into
    /// rows of <paramref name="stride"/> 16-bit elements from quad <paramref name="targetQuad"/>; rows at and past
    /// <paramref name="available"/> are zeros. d is a compile-time constant of the kernel's specialisation, so the divisions
    /// are shifts.
    /// </summary>
    private static void Stage(ArrayView<ulong> source, ArrayView<ulong> shared, int targetQuad, long firstRowQuad, int available,
        int rows, int d, int stride, int thread, int threads)
    {
        int quadsPerRow = d / 4, strideQuads = stride / 4;
        for (int e = thread; e < rows * quadsPerRow; e += threads)
        {
            int r = e / quadsPerRow, c = e % quadsPerRow;
            shared[targetQuad + r * strideQuads + c] = r < available ? source[firstRowQuad + r * quadsPerRow + c] : 0UL;
        }
    }
}
