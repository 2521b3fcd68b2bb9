using System.Runtime.CompilerServices;
using GpuAttention.Problems;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime.Cuda;

namespace GpuAttention.Kernels;

/// <summary>
/// How one operand's K step is laid out in shared memory, as compile-time behaviour: <see cref="Rows"/> rows of
/// <see cref="Width"/> halves, each row's 16-byte chunks permuted by an XOR with bits of the row ("swizzled") so that the
/// eight rows an ldmatrix reads, and the chunks cp.async writes, fall on different banks without padding.
/// </summary>
public interface IStagedTile
{
    /// <summary>Staged rows.</summary>
    int Rows { get; }

    /// <summary>Halves per staged row (a multiple of 8).</summary>
    int Width { get; }

    /// <summary>Index, in halves from the tile's start, of element <paramref name="column"/> of staged row <paramref name="row"/>.</summary>
    int Index(int row, int column);

    /// <summary>
    /// Rows between one thread's chunks when <see cref="HalfMatMulKernels.Threads"/> threads copy the tile a chunk each, row
    /// by row: the swizzle repeats at this period, so Index(r + RowStep, c) = Index(r, c) + RowStep · Width.
    /// </summary>
    int RowStep { get; }

    /// <summary>
    /// This thread's 16-byte copies of every K step, worked out once per block (<see cref="StagingPlan"/>): the operand's
    /// region has stored element (r, c) at <paramref name="first"/> + r·<paramref name="ld"/> + c in step 0, present for
    /// r &lt; <paramref name="rowsLeft"/> and c &lt; <paramref name="columnsLeft"/>; each step moves it BlockK along k, which
    /// is the staged rows' direction or their columns' as the layout says.
    /// </summary>
    StagingPlan Plan(long address, long first, int ld, int rowsLeft, int columnsLeft, int thread);
}

/// <summary>
/// One thread's share of staging an operand's K steps in 16-byte <see cref="AsyncCopy"/> chunks, worked out once per block:
/// <see cref="HalfMatMulKernels.ChunksPerThread"/> chunks a step, one column of chunks <see cref="IStagedTile.RowStep"/>
/// staged rows apart (the swizzle repeats at that period, so one place serves them all). <see cref="Chunked"/> is false
/// when some stored row does not start 16-byte aligned (odd strides): then the operand is staged element by element.
/// </summary>
public struct StagingPlan
{
    /// <summary>Every stored row starts 16-byte aligned: the operand's address, its first element and its row stride are multiples of 8 halves.</summary>
    public bool Chunked;

    /// <summary>The thread's first chunk, in halves from the staged tile's start.</summary>
    public int At;

    /// <summary>Halves between the thread's chunks in the staged tile (RowStep rows).</summary>
    public int ChunkHalves;

    /// <summary>The stored element of the thread's first chunk in step 0, and how far it moves per step and per chunk.</summary>
    public long From, FromPerStep, FromPerChunk;

    /// <summary>Valid halves of a chunk in step s: ColumnLimit − s·ColumnDecrement, clamped to 0 … 8.</summary>
    public int ColumnLimit, ColumnDecrement;

    /// <summary>The thread's first chunk is inside the rows in step s while RowLimit − s·RowDecrement &gt; 0; each later chunk needs RowStep more.</summary>
    public int RowLimit, RowDecrement, RowStep;

    /// <summary>The plan of <typeparamref name="TTile"/>'s thread <paramref name="thread"/> (see <see cref="IStagedTile.Plan"/>), k along the staged rows or columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static StagingPlan For<TTile>(long address, long first, int ld, int rowsLeft, int columnsLeft, int thread, bool kAlongRows)
        where TTile : struct, IStagedTile
    {
        var layout = default(TTile);
        int row = thread / (layout.Width / AsyncCopy.Halves), column = thread % (layout.Width / AsyncCopy.Halves) * AsyncCopy.Halves;
        return new StagingPlan
        {
            Chunked = (address & 15) == 0 && (first & 7) == 0 && (ld & 7) == 0,
            At = layout.Index(row, column),
            ChunkHalves = layout.RowStep * layout.Width,
            From = first + (long)row * ld + column,
            FromPerStep = kAlongRows ? (long)HalfMatMulKernels.BlockK * ld : HalfMatMulKernels.BlockK,
            FromPerChunk = (long)layout.RowStep * ld,
            ColumnLimit = columnsLeft - column,
            ColumnDecrement = kAlongRows ? 0 : HalfMatMulKernels.BlockK,
            RowLimit = rowsLeft - row,
            RowDecrement = kAlongRows ? HalfMatMulKernels.BlockK : 0,
            RowStep = layout.RowStep,
        };
    }

    /// <summary>Starts this thread's copies of K step <paramref name="step"/> into the staged tile at half <paramref name="tile"/> of <paramref name="shared"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void Copy(ArrayView<ushort> source, long address, ArrayView<ushort> shared, int tile, int step)
    {
        int valid = XMath.Clamp(ColumnLimit - step * ColumnDecrement, 0, AsyncCopy.Halves), rowLimit = RowLimit - step * RowDecrement;
        int at = tile + At;
        long from = From + step * FromPerStep;
        if (valid == AsyncCopy.Halves && rowLimit > (HalfMatMulKernels.ChunksPerThread - 1) * RowStep)
        {
            // Every chunk inside the data (all but the blocks and steps at the edges): whole copies, no zero-fill sizes.
            for (int i = 0; i < HalfMatMulKernels.ChunksPerThread; i++)
                AsyncCopy.Copy16(shared, at + i * ChunkHalves, source, from + i * FromPerChunk, address);
            return;
        }
        for (int i = 0; i < HalfMatMulKernels.ChunksPerThread; i++)
        {
            AsyncCopy.Copy16(shared, at, source, from, address, rowLimit > 0 ? valid : 0);
            at += ChunkHalves;
            from += FromPerChunk;
            rowLimit -= RowStep;
        }
    }
}

/// <summary>
/// <see cref="HalfMatMulKernels.BlockM"/> (= BlockN) rows of the step's <see cref="HalfMatMulKernels.BlockK"/> k each (64 bytes,
/// 4 chunks): chunk c of row r sits at c XOR ((r / 2) mod 4). Rows r and r + 1 fill the two halves of the 32 banks, and the
/// XOR spreads four consecutive pairs over the four chunks, so ldmatrix's eight rows are conflict-free.
/// </summary>
public readonly struct KInnerTile : IStagedTile
{
    /// <inheritdoc />
    public int Rows => HalfMatMulKernels.BlockM;

    /// <inheritdoc />
    public int Width => HalfMatMulKernels.BlockK;

    /// <inheritdoc />
    public int RowStep => HalfMatMulKernels.Threads / (HalfMatMulKernels.BlockK / AsyncCopy.Halves);

    /// <summary>
    /// Rows 16 apart are placed alike (the XOR takes bits 1–2 of the row), so a warp's four 16-row fragments are one ldmatrix
    /// address plus multiples of 16 rows (1024 bytes), the immediates <see cref="MMajorA"/> and <see cref="NMajorB"/> write.
    /// </summary>
    public const int RowsWithOneSwizzle = 16;

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Index(int row, int column) =>
        row * HalfMatMulKernels.BlockK + ((((column >> 3) ^ (row >> 1)) & 3) << 3) + (column & 7);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public StagingPlan Plan(long address, long first, int ld, int rowsLeft, int columnsLeft, int thread) =>
        StagingPlan.For<KInnerTile>(address, first, ld, rowsLeft, columnsLeft, thread, kAlongRows: false);
}

/// <summary>
/// <see cref="HalfMatMulKernels.BlockK"/> rows (one k each) of <see cref="HalfMatMulKernels.BlockM"/> (= BlockN) halves (256 bytes,
/// 16 chunks): chunk c of row r sits at c XOR (r mod 8). Eight consecutive rows would otherwise start on the same bank; the
/// XOR puts the chunk ldmatrix .trans reads from each on a different one.
/// </summary>
public readonly struct KOuterTile : IStagedTile
{
    /// <inheritdoc />
    public int Rows => HalfMatMulKernels.BlockK;

    /// <inheritdoc />
    public int Width => HalfMatMulKernels.BlockM;

    /// <inheritdoc />
    public int RowStep => HalfMatMulKernels.Threads / (HalfMatMulKernels.BlockM / AsyncCopy.Halves);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Index(int row, int column) =>
        row * HalfMatMulKernels.BlockM + (((column >> 3) ^ (row & 7)) << 3) + (column & 7);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public StagingPlan Plan(long address, long first, int ld, int rowsLeft, int columnsLeft, int thread) =>
        StagingPlan.For<KOuterTile>(address, first, ld, rowsLeft, columnsLeft, thread, kAlongRows: true);
}

/// <summary>
/// How A is stored, as compile-time behaviour: how a K step of it is staged in shared memory, and how ldmatrix reads a
/// warp's fragments from the staged tile.
/// </summary>
public interface IHalfGemmOperandA
{
    /// <summary>This thread's copies of op(A)[m0 … m0 + BlockM − 1, every K step], zero outside M and K (<see cref="IStagedTile.Plan"/>).</summary>
    StagingPlan Plan(long addressA, MatMulProblem p, int batch, int m0, int thread);

    /// <summary>
    /// Stages op(A)[m0 … m0 + BlockM − 1, k0 … k0 + BlockK − 1] into the tile at half <paramref name="tile"/> of
    /// <paramref name="shared"/> element by element, zero outside M and K: the way when the plan is not <see cref="StagingPlan.Chunked"/>.
    /// </summary>
    void StageByElements(ArrayView<ushort> a, ArrayView<ushort> shared, int tile, MatMulProblem p, int batch, int m0, int k0, int thread);

    /// <summary>A's fragment for rows m … m + 15 of the block (m a multiple of 16) and k kk … kk + 15 of the staged step (portable body).</summary>
    MmaFragmentA Load(ArrayView<ushort> shared, int tile, int kk, int m, int lane, ArrayView<int> scratch);

    /// <summary>CUDA: ldmatrix of rows m … m + 63 and k kk … kk + 15 into the named registers wa0–15 of <see cref="WarpTile64x64"/>.</summary>
    void LoadWarpFragmentsOnCuda(int tile, int kk, int m, int lane);
}

/// <summary>A stored M×K (op(A) = A): staged as stored (<see cref="KInnerTile"/>), read by ldmatrix.</summary>
public readonly struct MMajorA : IHalfGemmOperandA
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public StagingPlan Plan(long addressA, MatMulProblem p, int batch, int m0, int thread) =>
        default(KInnerTile).Plan(addressA, p.OffsetA(batch, m0, 0), p.Lda, p.M - m0, p.K, thread);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void StageByElements(ArrayView<ushort> a, ArrayView<ushort> shared, int tile, MatMulProblem p, int batch, int m0, int k0, int thread) =>
        HalfMatMulKernels.StageByElements<KInnerTile>(a, p.OffsetA(batch, m0, k0), p.Lda, p.M - m0, p.K - k0, shared, tile, thread);

    /// <inheritdoc />
    public MmaFragmentA Load(ArrayView<ushort> shared, int tile, int kk, int m, int lane, ArrayView<int> scratch) =>
        WarpMatrix.LoadX4Portable<AsStored>(shared, tile + RowStart(kk, m, lane), scratch).AsFragmentA();

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void LoadWarpFragmentsOnCuda(int tile, int kk, int m, int lane) => CudaAsm.Emit(
        // 16 staged rows (1024 bytes) apart, each the same swizzle (KInnerTile.RowsWithOneSwizzle): one address, three offsets.
        "{ .reg .u32 at; mov.u32 at, __dyn_shared_alloca; add.u32 at, at, %0; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {wa0,wa1,wa2,wa3}, [at]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {wa4,wa5,wa6,wa7}, [at+1024]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {wa8,wa9,wa10,wa11}, [at+2048]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {wa12,wa13,wa14,wa15}, [at+3072]; }",
        (tile + RowStart(kk, m, lane)) * sizeof(ushort));

    // Matrix i = lane / 8 holds rows 0–7 or 8–15 (i mod 2) of k 0–7 or 8–15 (i / 2): a0 … a3 of the PTX ISA's A fragment.
    private static int RowStart(int kk, int m, int lane)
    {
        int matrix = lane >> 3;
        return default(KInnerTile).Index(m + (lane & 7) + ((matrix & 1) << 3), kk + ((matrix >> 1) << 3));
    }
}

/// <summary>A stored K×M and used transposed (<see cref="MatMulProblem.TransA"/>): staged as stored (<see cref="KOuterTile"/>), read by ldmatrix .trans.</summary>
public readonly struct KMajorA : IHalfGemmOperandA
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public StagingPlan Plan(long addressA, MatMulProblem p, int batch, int m0, int thread) =>
        default(KOuterTile).Plan(addressA, p.OffsetA(batch, m0, 0), p.Lda, p.K, p.M - m0, thread);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void StageByElements(ArrayView<ushort> a, ArrayView<ushort> shared, int tile, MatMulProblem p, int batch, int m0, int k0, int thread) =>
        HalfMatMulKernels.StageByElements<KOuterTile>(a, p.OffsetA(batch, m0, k0), p.Lda, p.K - k0, p.M - m0, shared, tile, thread);

    /// <inheritdoc />
    public MmaFragmentA Load(ArrayView<ushort> shared, int tile, int kk, int m, int lane, ArrayView<int> scratch) =>
        WarpMatrix.LoadX4Portable<Transposed>(shared, tile + RowStart(kk, m, lane), scratch).AsFragmentA();

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void LoadWarpFragmentsOnCuda(int tile, int kk, int m, int lane) => CudaAsm.Emit(
        "{ .reg .u32 base, at; mov.u32 base, __dyn_shared_alloca; " +
        "add.u32 at, base, %0; ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {wa0,wa1,wa2,wa3}, [at]; " +
        "add.u32 at, base, %1; ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {wa4,wa5,wa6,wa7}, [at]; " +
        "add.u32 at, base, %2; ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {wa8,wa9,wa10,wa11}, [at]; " +
        "add.u32 at, base, %3; ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {wa12,wa13,wa14,wa15}, [at]; }",
        (tile + RowStart(kk, m, lane)) * sizeof(ushort), (tile + RowStart(kk, m + 16, lane)) * sizeof(ushort),
        (tile + RowStart(kk, m + 32, lane)) * sizeof(ushort), (tile + RowStart(kk, m + 48, lane)) * sizeof(ushort));

    // Matrix i = lane / 8: staged k rows 0–7 or 8–15 (i / 2) at op(A) rows m … m + 7 or m + 8 … (i mod 2); .trans turns
    // each 8×8 k-major matrix into the m-major a_i of the fragment.
    private static int RowStart(int kk, int m, int lane)
    {
        int matrix = lane >> 3;
        return default(KOuterTile).Index(kk + (lane & 7) + ((matrix >> 1) << 3), m + ((matrix & 1) << 3));
    }
}

/// <summary>
/// How B is stored, as compile-time behaviour: how a K step of it is staged in shared memory, and how ldmatrix reads a
/// warp's fragments from the staged tile.
/// </summary>
public interface IHalfGemmOperandB
{
    /// <summary>This thread's copies of op(B)[every K step, n0 … n0 + BlockN − 1], zero outside K and N (<see cref="IStagedTile.Plan"/>).</summary>
    StagingPlan Plan(long addressB, MatMulProblem p, int batch, int n0, int thread);

    /// <summary>
    /// Stages op(B)[k0 … k0 + BlockK − 1, n0 … n0 + BlockN − 1] into the tile at half <paramref name="tile"/> of
    /// <paramref name="shared"/> element by element, zero outside K and N: the way when the plan is not <see cref="StagingPlan.Chunked"/>.
    /// </summary>
    void StageByElements(ArrayView<ushort> b, ArrayView<ushort> shared, int tile, MatMulProblem p, int batch, int k0, int n0, int thread);

    /// <summary>B's fragments for k kk … kk + 15 of the staged step and columns n, n + 8 (n: a multiple of 16 within the block; portable body).</summary>
    (MmaFragmentB Low, MmaFragmentB High) Load(ArrayView<ushort> shared, int tile, int kk, int n, int lane, ArrayView<int> scratch);

    /// <summary>CUDA: ldmatrix of k kk … kk + 15 and columns n … n + 63 into the named registers wb0–15 of <see cref="WarpTile64x64"/>.</summary>
    void LoadWarpFragmentsOnCuda(int tile, int kk, int n, int lane);
}

/// <summary>B stored K×N (op(B) = B): staged as stored (<see cref="KOuterTile"/>), read by ldmatrix .trans.</summary>
public readonly struct KMajorB : IHalfGemmOperandB
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public StagingPlan Plan(long addressB, MatMulProblem p, int batch, int n0, int thread) =>
        default(KOuterTile).Plan(addressB, p.OffsetB(batch, 0, n0), p.Ldb, p.K, p.N - n0, thread);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void StageByElements(ArrayView<ushort> b, ArrayView<ushort> shared, int tile, MatMulProblem p, int batch, int k0, int n0, int thread) =>
        HalfMatMulKernels.StageByElements<KOuterTile>(b, p.OffsetB(batch, k0, n0), p.Ldb, p.K - k0, p.N - n0, shared, tile, thread);

    /// <inheritdoc />
    public (MmaFragmentB Low, MmaFragmentB High) Load(ArrayView<ushort> shared, int tile, int kk, int n, int lane, ArrayView<int> scratch) =>
        WarpMatrix.LoadX4Portable<Transposed>(shared, tile + RowStart(kk, n, lane), scratch).AsFragmentsB();

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void LoadWarpFragmentsOnCuda(int tile, int kk, int n, int lane) => CudaAsm.Emit(
        "{ .reg .u32 base, at; mov.u32 base, __dyn_shared_alloca; " +
        "add.u32 at, base, %0; ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {wb0,wb1,wb2,wb3}, [at]; " +
        "add.u32 at, base, %1; ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {wb4,wb5,wb6,wb7}, [at]; " +
        "add.u32 at, base, %2; ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {wb8,wb9,wb10,wb11}, [at]; " +
        "add.u32 at, base, %3; ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {wb12,wb13,wb14,wb15}, [at]; }",
        (tile + RowStart(kk, n, lane)) * sizeof(ushort), (tile + RowStart(kk, n + 16, lane)) * sizeof(ushort),
        (tile + RowStart(kk, n + 32, lane)) * sizeof(ushort), (tile + RowStart(kk, n + 48, lane)) * sizeof(ushort));

    // Matrix i = lane / 8: k rows 0–7 or 8–15 by i mod 2, columns n … n + 7 or n + 8 … n + 15 by i / 2.
    private static int RowStart(int kk, int n, int lane)
    {
        int matrix = lane >> 3;
        return default(KOuterTile).Index(kk + (lane & 7) + ((matrix & 1) << 3), n + ((matrix >> 1) << 3));
    }
}

/// <summary>B stored N×K and used transposed (PyTorch's Linear weights): staged as stored (<see cref="KInnerTile"/>), read by ldmatrix.</summary>
public readonly struct NMajorB : IHalfGemmOperandB
{
    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public StagingPlan Plan(long addressB, MatMulProblem p, int batch, int n0, int thread) =>
        default(KInnerTile).Plan(addressB, p.OffsetB(batch, 0, n0), p.Ldb, p.N - n0, p.K, thread);

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void StageByElements(ArrayView<ushort> b, ArrayView<ushort> shared, int tile, MatMulProblem p, int batch, int k0, int n0, int thread) =>
        HalfMatMulKernels.StageByElements<KInnerTile>(b, p.OffsetB(batch, k0, n0), p.Ldb, p.N - n0, p.K - k0, shared, tile, thread);

    /// <inheritdoc />
    public (MmaFragmentB Low, MmaFragmentB High) Load(ArrayView<ushort> shared, int tile, int kk, int n, int lane, ArrayView<int> scratch) =>
        WarpMatrix.LoadX4Portable<AsStored>(shared, tile + RowStart(kk, n, lane), scratch).AsFragmentsB();

    /// <inheritdoc />
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void LoadWarpFragmentsOnCuda(int tile, int kk, int n, int lane) => CudaAsm.Emit(
        // 16 staged rows (1024 bytes) apart, each the same swizzle (KInnerTile.RowsWithOneSwizzle): one address, three offsets.
        "{ .reg .u32 at; mov.u32 at, __dyn_shared_alloca; add.u32 at, at, %0; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {wb0,wb1,wb2,wb3}, [at]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {wb4,wb5,wb6,wb7}, [at+1024]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {wb8,wb9,wb10,wb11}, [at+2048]; " +
        "ldmatrix.sync.aligned.m8n8.x4.shared.b16 {wb12,wb13,wb14,wb15}, [at+3072]; }",
        (tile + RowStart(kk, n, lane)) * sizeof(ushort));

    // Matrix i = lane / 8: columns n … n + 7 or n + 8 … n + 15 by i / 2 (as rows of the staged tile), k 0–7 or 8–15 by i mod 2.
    private static int RowStart(int kk, int n, int lane)
    {
        int matrix = lane >> 3;
        return default(KInnerTile).Index(n + (lane & 7) + ((matrix >> 1) << 3), kk + ((matrix & 1) << 3));
    }
}

/// <summary>Where the GEMM's C lives, as compile-time behaviour: fp32, or a 16-bit format the result is rounded to.</summary>
public interface IGemmOutput
{
    /// <summary>C's element <paramref name="at"/> as a float (read when β ≠ 0).</summary>
    float Load(long at);

    /// <summary>Writes <paramref name="value"/> to C's element <paramref name="at"/>.</summary>
    void Store(long at, float value);
}

/// <summary>C in fp32.</summary>
public struct F32GemmOutput : IGemmOutput
{
    /// <summary>C's elements.</summary>
    public ArrayView<float> Values;

    /// <inheritdoc />
    public readonly float Load(long at) => Values[at];

    /// <inheritdoc />
    public readonly void Store(long at, float value) => Values[at] = value;
}

/// <summary>C in a 16-bit format: read by <typeparamref name="TWiden"/> (exact), written rounded to nearest-even by <typeparamref name="TNarrow"/>.</summary>
public struct SixteenBitGemmOutput<TNarrow, TWiden> : IGemmOutput
    where TNarrow : struct, IElementConversion<float, ushort>
    where TWiden : struct, IElementConversion<ushort, float>
{
    /// <summary>C's bits.</summary>
    public ArrayView<ushort> Values;

    /// <inheritdoc />
    public readonly float Load(long at) => default(TWiden).Convert(Values[at]);

    /// <inheritdoc />
    public readonly void Store(long at, float value) => Values[at] = default(TNarrow).Convert(value);
}

/// <summary>
/// C = act(α·op(A)·op(B) + β·C + bias) with A and B in 16-bit floats (<see cref="IMmaFormat"/>: bf16 or f16), fp32 accumulation on
/// the tensor cores, the epilogue in fp32, C in fp32 or rounded once to a 16-bit format (<see cref="IGemmOutput"/>); batched
/// with strides and broadcast as <see cref="MatMulProblem"/>; any M, N, K. How A and B are stored is a compile-time choice
/// (<see cref="MMajorA"/>, <see cref="KMajorA"/> for a transposed A; <see cref="KMajorB"/>, <see cref="NMajorB"/>).
/// </summary>
/// <remarks>
/// A group of <see cref="Threads"/> threads (4 warps, 2 × 2, each a <see cref="WarpTile64x64"/>) owns a
/// <see cref="BlockM"/>×<see cref="BlockN"/> block of C and walks K in steps of <see cref="BlockK"/> through a
/// <see cref="Stages"/>-deep ring of shared-memory stages: while the warps multiply step t, the copies of steps t + 1 and
/// t + 2 are in flight (<see cref="AsyncCopy"/>: cp.async on CUDA), so one barrier per step both publishes step t and frees
/// the slot of step t − 1 for step t + 2. The staged tiles are swizzled (<see cref="IStagedTile"/>), so ldmatrix is free of
/// bank conflicts and the ring fits the 48 KB a block may have without an opt-in. Each thread's copies are planned once per
/// block (<see cref="StagingPlan"/>); operands whose rows are not 16-byte aligned are staged element by element instead.
/// The accumulators leave through shared memory, half the block at a time, and the epilogue writes C a row at a time
/// (coalesced).
/// </remarks>
public static class HalfMatMulKernels
{
    /// <summary>Block tile of C and the K step.</summary>
    public const int BlockM = 128, BlockN = 128, BlockK = 32;

    /// <summary>Threads per group: 4 warps.</summary>
    public const int Threads = 128;

    /// <summary>K steps in the ring: the one being multiplied and two in flight (the wait in the loop is "all but the newest", which is Stages − 2 = 1).</summary>
    public const int Stages = 3;

    /// <summary>Halves of one operand's staged step (either layout).</summary>
    public const int TileHalves = BlockM * BlockK;

    /// <summary>16-byte chunks each thread copies of one operand's step (either layout).</summary>
    public const int ChunksPerThread = TileHalves / AsyncCopy.Halves / Threads;

    /// <summary>Halves one stage takes: A's tile, then B's (BlockN = BlockM).</summary>
    public const int StageHalves = 2 * TileHalves;

    /// <summary>Row stride, in floats, of half the block's accumulators in shared memory after the loop (4 of padding: rows on different banks).</summary>
    public const int AccumulatorStride = BlockN + 4;

    /// <summary>Bytes of shared memory the ring takes (48 KB), reused by half the block's accumulators after the loop.</summary>
    public const int PipelineBytes = Stages * StageHalves * sizeof(ushort) > BlockM / 2 * AccumulatorStride * sizeof(float)
        ? Stages * StageHalves * sizeof(ushort)
        : BlockM / 2 * AccumulatorStride * sizeof(float);

    /// <summary>Dynamic shared bytes a launch needs: the ring, plus the portable primitives' scratch where they run (not on CUDA).</summary>
    public static int SharedBytes(bool onCuda) =>
        PipelineBytes
        + (onCuda ? 0 : Threads / MmaLayout.WarpSize * (WarpMma.ScratchFloatsPerWarp * sizeof(float) + WarpMatrix.ScratchIntsPerWarp * sizeof(int)));

    /// <summary>
    /// Launch: grid (⌈N / <see cref="BlockN"/>⌉, ⌈M / <see cref="BlockM"/>⌉, batch), groups of <see cref="Threads"/>, dynamic shared
    /// memory of <see cref="SharedBytes"/> bytes. <paramref name="addressA"/> and <paramref name="addressB"/>: on CUDA the device
    /// addresses of <paramref name="a"/>'s and <paramref name="b"/>'s first elements (cp.async needs them; a kernel cannot
    /// take them from a view); elsewhere 0 (only their alignment is read there).
    /// </summary>
    public static void TensorCore<TFormat, TOperandA, TOperandB, TOutput>(ArrayView<ushort> a, ArrayView<ushort> b, TOutput c, ArrayView<float> bias,
        MatMulProblem p, long addressA, long addressB)
        where TFormat : struct, IMmaFormat
        where TOperandA : struct, IHalfGemmOperandA
        where TOperandB : struct, IHalfGemmOperandB
        where TOutput : struct, IGemmOutput
    {
        var tile = default(WarpTile64x64);
        tile.Clear();
        int thread = Group.IdxX, lane = thread & (MmaLayout.WarpSize - 1), warp = thread / MmaLayout.WarpSize;
        int m0 = Grid.IdxY * BlockM, n0 = Grid.IdxX * BlockN, batch = Grid.IdxZ;
        int warpRow = (warp >> 1) * 64, warpColumn = (warp & 1) * 64;

        var shared = SharedMemory.GetDynamic<ushort>();
        var sharedFloats = SharedMemory.GetDynamic<float>();
        int mmaScratchFloats = Threads / MmaLayout.WarpSize * WarpMma.ScratchFloatsPerWarp;
        var mmaScratch = sharedFloats.SubView(PipelineBytes / sizeof(float), mmaScratchFloats);
        var matrixScratch = SharedMemory.GetDynamic<int>().SubView(PipelineBytes / sizeof(int) + mmaScratchFloats);

        var planA = default(TOperandA).Plan(addressA, p, batch, m0, thread);
        var planB = default(TOperandB).Plan(addressB, p, batch, n0, thread);
        int steps = (p.K + BlockK - 1) / BlockK;
        for (int step = 0; step < Stages - 1; step++)
        {
            if (step < steps)
                StageStep<TOperandA, TOperandB>(a, addressA, planA, b, addressB, planB, shared, p, batch, m0, n0, step, thread);
            // Committed even when empty, so that the wait below always counts Stages − 1 groups ahead.
            AsyncCopy.Commit();
        }
        for (int step = 0; step < steps; step++)
        {
            AsyncCopy.WaitAllButNewest();
            // Publishes this step's copies to every warp, and every warp is done with the previous step, whose slot is refilled next.
            Group.Barrier();
            if (step + Stages - 1 < steps)
                StageStep<TOperandA, TOperandB>(a, addressA, planA, b, addressB, planB, shared, p, batch, m0, n0, step + Stages - 1, thread);
            AsyncCopy.Commit();
            int tileA = step % Stages * StageHalves;
            tile.MultiplyAccumulate<TFormat, TOperandA, TOperandB>(shared, tileA, tileA + TileHalves, 0, warpRow, warpColumn, lane, mmaScratch, matrixScratch);
            tile.MultiplyAccumulate<TFormat, TOperandA, TOperandB>(shared, tileA, tileA + TileHalves, 16, warpRow, warpColumn, lane, mmaScratch, matrixScratch);
        }
        AsyncCopy.WaitAll();
        for (int half = 0; half < 2; half++)
        {
            // The ring (then the previous half) is reused for the accumulators: every thread must be done reading it.
            Group.Barrier();
            if (warpRow == half * (BlockM / 2))
                tile.Store(sharedFloats, 0, AccumulatorStride, 0, warpColumn, lane);
            Group.Barrier();
            for (int e = thread; e < BlockM / 2 * BlockN; e += Threads)
            {
                int row = e / BlockN, column = e % BlockN;
                StoreElement(p, c, bias, batch, m0 + half * (BlockM / 2) + row, n0 + column, sharedFloats[row * AccumulatorStride + column]);
            }
        }
    }

    /// <summary>Starts staging K step <paramref name="step"/> of A and B into its slot of the ring.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StageStep<TOperandA, TOperandB>(ArrayView<ushort> a, long addressA, StagingPlan planA, ArrayView<ushort> b, long addressB,
        StagingPlan planB, ArrayView<ushort> shared, MatMulProblem p, int batch, int m0, int n0, int step, int thread)
        where TOperandA : struct, IHalfGemmOperandA
        where TOperandB : struct, IHalfGemmOperandB
    {
        int tileA = step % Stages * StageHalves, k0 = step * BlockK;
        if (planA.Chunked)
            planA.Copy(a, addressA, shared, tileA, step);
        else
            default(TOperandA).StageByElements(a, shared, tileA, p, batch, m0, k0, thread);
        if (planB.Chunked)
            planB.Copy(b, addressB, shared, tileA + TileHalves, step);
        else
            default(TOperandB).StageByElements(b, shared, tileA + TileHalves, p, batch, k0, n0, thread);
    }

    /// <summary>
    /// Stages a region of a row-major stored operand into the shared tile at half <paramref name="tile"/> element by element
    /// with plain loads (complete on return), laid out as <typeparamref name="TTile"/> says: stored element (r, c) at
    /// <paramref name="first"/> + r·<paramref name="ld"/> + c, present for r &lt; <paramref name="rowsLeft"/> and c &lt;
    /// <paramref name="columnsLeft"/>, zero elsewhere. For stored rows that do not start 16-byte aligned (odd strides), where
    /// <see cref="StagingPlan"/>'s copies cannot go.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void StageByElements<TTile>(ArrayView<ushort> source, long first, int ld, int rowsLeft, int columnsLeft,
        ArrayView<ushort> shared, int tile, int thread)
        where TTile : struct, IStagedTile
    {
        var layout = default(TTile);
        for (int e = thread; e < layout.Rows * layout.Width; e += Threads)
        {
            int r = e / layout.Width, column = e % layout.Width;
            shared[tile + layout.Index(r, column)] = r < rowsLeft && column < columnsLeft ? source[first + (long)r * ld + column] : (ushort)0;
        }
    }

    /// <summary>act(α·dot + β·C + bias) in fp32, as <see cref="MatMulKernels"/>' epilogue, then stored by the output.</summary>
    private static void StoreElement<TOutput>(MatMulProblem p, TOutput c, ArrayView<float> bias, int batch, int m, int n, float dot)
        where TOutput : struct, IGemmOutput
    {
        if (m >= p.M || n >= p.N)
            return;
        long at = p.OffsetC(batch, m, n);
        float value = p.Alpha * dot;
        if (p.Beta != 0f)
            value += p.Beta * c.Load(at);
        if (p.HasBias != 0)
            value += bias[n];
        c.Store(at, ActivationMath.Apply(value, p.Activation));
    }
}
