using GpuAttention.Problems;
using ILGPU;

namespace GpuAttention.Kernels;

/// <summary>
/// How A is stored, as compile-time behaviour: how a K step of it is staged in shared memory, and how ldmatrix reads a
/// 16×16 fragment of it from the staged tile.
/// </summary>
public interface IHalfGemmOperandA
{
    /// <summary>Stages op(A)[m0 … m0 + 63, k0 … k0 + 31] into <paramref name="tile"/>, zero outside M and K; coalesced along the stored rows.</summary>
    void Stage(ArrayView<ushort> a, ArrayView<ushort> tile, MatMulProblem p, int batch, int m0, int k0, int thread);

    /// <summary>A's fragment for rows m … m + 15 of the block (m a multiple of 16) and k kk … kk + 15 of the staged step.</summary>
    MmaFragmentA Load(ArrayView<ushort> shared, int kk, int m, int lane, ArrayView<int> scratch);
}

/// <summary>A stored M×K (op(A) = A): staged m-major, read by ldmatrix as stored.</summary>
public readonly struct MMajorA : IHalfGemmOperandA
{
    /// <summary>Halves per staged row: 32 k and 8 of padding (80 B apart: ldmatrix's 8 rows on different banks).</summary>
    public const int Stride = HalfMatMulKernels.BlockK + 8;

    /// <inheritdoc />
    public void Stage(ArrayView<ushort> a, ArrayView<ushort> tile, MatMulProblem p, int batch, int m0, int k0, int thread)
    {
        for (int e = thread; e < HalfMatMulKernels.BlockM * HalfMatMulKernels.BlockK; e += HalfMatMulKernels.Threads)
        {
            int mm = e / HalfMatMulKernels.BlockK, kk = e % HalfMatMulKernels.BlockK;
            tile[mm * Stride + kk] = m0 + mm < p.M && k0 + kk < p.K ? a[p.OffsetA(batch, m0 + mm, k0 + kk)] : (ushort)0;
        }
    }

    /// <inheritdoc />
    public MmaFragmentA Load(ArrayView<ushort> shared, int kk, int m, int lane, ArrayView<int> scratch)
    {
        // Matrix i = lane / 8 holds rows 0–7 or 8–15 (i mod 2) of k 0–7 or 8–15 (i / 2): a0 … a3 of the PTX ISA's A fragment.
        int matrix = lane >> 3, row = m + (lane & 7) + ((matrix & 1) << 3), k = kk + ((matrix >> 1) << 3);
        return WarpMatrix.LoadX4<AsStored>(shared, row * Stride + k, scratch).AsFragmentA();
    }
}

/// <summary>A stored K×M and used transposed (<see cref="MatMulProblem.TransA"/>): staged k-major, read by ldmatrix .trans.</summary>
public readonly struct KMajorA : IHalfGemmOperandA
{
    /// <summary>Halves per staged row: 64 rows of op(A) and 8 of padding (144 B apart: ldmatrix's 8 rows on different banks).</summary>
    public const int Stride = HalfMatMulKernels.BlockM + 8;

    /// <inheritdoc />
    public void Stage(ArrayView<ushort> a, ArrayView<ushort> tile, MatMulProblem p, int batch, int m0, int k0, int thread)
    {
        for (int e = thread; e < HalfMatMulKernels.BlockK * HalfMatMulKernels.BlockM; e += HalfMatMulKernels.Threads)
        {
            int kk = e / HalfMatMulKernels.BlockM, mm = e % HalfMatMulKernels.BlockM;
            tile[kk * Stride + mm] = m0 + mm < p.M && k0 + kk < p.K ? a[p.OffsetA(batch, m0 + mm, k0 + kk)] : (ushort)0;
        }
    }

    /// <inheritdoc />
    public MmaFragmentA Load(ArrayView<ushort> shared, int kk, int m, int lane, ArrayView<int> scratch)
    {
        // Matrix i = lane / 8: staged k rows 0–7 or 8–15 (i / 2) at op(A) rows m … m + 7 or m + 8 … (i mod 2); .trans turns
        // each 8×8 k-major matrix into the m-major a_i of the fragment.
        int matrix = lane >> 3, k = kk + (lane & 7) + ((matrix >> 1) << 3), row = m + ((matrix & 1) << 3);
        return WarpMatrix.LoadX4<Transposed>(shared, k * Stride + row, scratch).AsFragmentA();
    }
}

/// <summary>
/// How B is stored, as compile-time behaviour: how a K step of it is staged in shared memory, and how ldmatrix reads the
/// fragments of two 8-column tiles from the staged tile.
/// </summary>
public interface IHalfGemmOperandB
{
    /// <summary>Stages op(B)[k0 … k0 + 31, n0 … n0 + 63] into <paramref name="tile"/>, zero outside K and N; coalesced along the stored rows.</summary>
    void Stage(ArrayView<ushort> b, ArrayView<ushort> tile, MatMulProblem p, int batch, int k0, int n0, int thread);

    /// <summary>B's fragments for k kk … kk + 15 of the staged step and columns n, n + 8 (n: a multiple of 16 within the block).</summary>
    (MmaFragmentB Low, MmaFragmentB High) Load(ArrayView<ushort> shared, int tileStart, int kk, int n, int lane, ArrayView<int> scratch);
}

/// <summary>B stored K×N (op(B) = B): staged k-major, read by ldmatrix .trans.</summary>
public readonly struct KMajorB : IHalfGemmOperandB
{
    /// <summary>Halves per staged row: 64 columns and 8 of padding, so that ldmatrix's 8 rows fall on different banks (144 B apart).</summary>
    public const int Stride = HalfMatMulKernels.BlockN + 8;

    /// <inheritdoc />
    public void Stage(ArrayView<ushort> b, ArrayView<ushort> tile, MatMulProblem p, int batch, int k0, int n0, int thread)
    {
        for (int e = thread; e < HalfMatMulKernels.BlockK * HalfMatMulKernels.BlockN; e += HalfMatMulKernels.Threads)
        {
            int kk = e / HalfMatMulKernels.BlockN, nn = e % HalfMatMulKernels.BlockN;
            tile[kk * Stride + nn] = k0 + kk < p.K && n0 + nn < p.N ? b[p.OffsetB(batch, k0 + kk, n0 + nn)] : (ushort)0;
        }
    }

    /// <inheritdoc />
    public (MmaFragmentB Low, MmaFragmentB High) Load(ArrayView<ushort> shared, int tileStart, int kk, int n, int lane, ArrayView<int> scratch)
    {
        // Matrix i = lane / 8: k rows 0–7 or 8–15 by i mod 2, columns n … n + 7 or n + 8 … n + 15 by i / 2.
        int matrix = lane >> 3, k = kk + (lane & 7) + ((matrix & 1) << 3), column = n + ((matrix >> 1) << 3);
        return WarpMatrix.LoadX4<Transposed>(shared, tileStart + k * Stride + column, scratch).AsFragmentsB();
    }
}

/// <summary>B stored N×K and used transposed (PyTorch's Linear weights): staged n-major, read by ldmatrix as stored.</summary>
public readonly struct NMajorB : IHalfGemmOperandB
{
    /// <summary>Halves per staged row: 32 k and 8 of padding (80 B apart: ldmatrix's 8 rows on different banks).</summary>
    public const int Stride = HalfMatMulKernels.BlockK + 8;

    /// <inheritdoc />
    public void Stage(ArrayView<ushort> b, ArrayView<ushort> tile, MatMulProblem p, int batch, int k0, int n0, int thread)
    {
        for (int e = thread; e < HalfMatMulKernels.BlockN * HalfMatMulKernels.BlockK; e += HalfMatMulKernels.Threads)
        {
            int nn = e / HalfMatMulKernels.BlockK, kk = e % HalfMatMulKernels.BlockK;
            tile[nn * Stride + kk] = k0 + kk < p.K && n0 + nn < p.N ? b[p.OffsetB(batch, k0 + kk, n0 + nn)] : (ushort)0;
        }
    }

    /// <inheritdoc />
    public (MmaFragmentB Low, MmaFragmentB High) Load(ArrayView<ushort> shared, int tileStart, int kk, int n, int lane, ArrayView<int> scratch)
    {
        // Matrix i = lane / 8: columns n … n + 7 or n + 8 … n + 15 by i / 2 (as rows of the staged tile), k 0–7 or 8–15 by i mod 2.
        int matrix = lane >> 3, row = n + (lane & 7) + ((matrix >> 1) << 3), k = kk + ((matrix & 1) << 3);
        return WarpMatrix.LoadX4<AsStored>(shared, tileStart + row * Stride + k, scratch).AsFragmentsB();
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

/// <summary>A warp's 32×32 tile of the output: 2 × 4 m16n8 accumulators, held in registers (fields, indexed by constants).</summary>
public struct WarpTile32x32
{
    /// <summary>Accumulator of rows 16·i … and columns 8·j … of the warp's tile.</summary>
    public MmaAccumulator C00, C01, C02, C03, C10, C11, C12, C13;
}

/// <summary>
/// C = act(α·op(A)·op(B) + β·C + bias) with A and B in 16-bit floats (<see cref="IMmaFormat"/>: bf16 or f16), fp32 accumulation on
/// the tensor cores (<see cref="WarpMma"/>), the epilogue in fp32, C in fp32 or rounded once to a 16-bit format
/// (<see cref="IGemmOutput"/>); batched with strides and broadcast as <see cref="MatMulProblem"/>;
/// any M, N, K. How A and B are stored is a compile-time choice (<see cref="MMajorA"/>, <see cref="KMajorA"/> for a transposed
/// A; <see cref="KMajorB"/>, <see cref="NMajorB"/>).
/// </summary>
/// <remarks>
/// A group of <see cref="Threads"/> threads (4 warps, 2 × 2) owns a <see cref="BlockM"/>×<see cref="BlockN"/> block of C and
/// walks K in steps of <see cref="BlockK"/>: the step of A and B is staged in shared memory (rows padded so that ldmatrix is
/// free of bank conflicts), each warp loads its fragments with ldmatrix and issues 2 × 4 mma per 16 of K. This first version
/// stages with plain loads and one buffer. A cp.async pipeline waits on getting the fragments out of ILGPU's .local
/// inline-asm outputs: with cp.async in the function ptxas keeps them on the stack (docs/PTX-GATE.md, "cp.async").
/// </remarks>
public static class HalfMatMulKernels
{
    /// <summary>Block tile of C and the K step.</summary>
    public const int BlockM = 64, BlockN = 64, BlockK = 32;

    /// <summary>Threads per group: 4 warps.</summary>
    public const int Threads = 128;

    /// <summary>Halves the staged A takes in either layout (m-major: 64 × 40; k-major: 32 × 72).</summary>
    public const int StagedHalvesA = BlockM * MMajorA.Stride;

    /// <summary>Halves of shared memory the staged tiles take (A, then B, each in either layout).</summary>
    public const int StagedHalves = StagedHalvesA + BlockN * NMajorB.Stride;

    /// <summary>Dynamic shared bytes a launch needs: the staged tiles, plus the portable primitives' scratch where they run (not on CUDA).</summary>
    public static int SharedBytes(bool onCuda) =>
        StagedHalves * sizeof(ushort)
        + (onCuda ? 0 : Threads / MmaLayout.WarpSize * (WarpMma.ScratchFloatsPerWarp * sizeof(float) + WarpMatrix.ScratchIntsPerWarp * sizeof(int)));

    /// <summary>
    /// Launch: grid (⌈N / <see cref="BlockN"/>⌉, ⌈M / <see cref="BlockM"/>⌉, batch), groups of <see cref="Threads"/>, dynamic shared
    /// memory of <see cref="SharedBytes"/> bytes.
    /// </summary>
    public static void TensorCore<TFormat, TOperandA, TOperandB, TOutput>(ArrayView<ushort> a, ArrayView<ushort> b, TOutput c, ArrayView<float> bias,
        MatMulProblem p)
        where TFormat : struct, IMmaFormat
        where TOperandA : struct, IHalfGemmOperandA
        where TOperandB : struct, IHalfGemmOperandB
        where TOutput : struct, IGemmOutput
    {
        int thread = Group.IdxX, lane = thread & (MmaLayout.WarpSize - 1), warp = thread / MmaLayout.WarpSize;
        int m0 = Grid.IdxY * BlockM, n0 = Grid.IdxX * BlockN, batch = Grid.IdxZ;
        int warpRow = (warp >> 1) * 32, warpColumn = (warp & 1) * 32;

        var shared = SharedMemory.GetDynamic<ushort>();
        int mmaScratchFloats = Threads / MmaLayout.WarpSize * WarpMma.ScratchFloatsPerWarp;
        var mmaScratch = SharedMemory.GetDynamic<float>().SubView(StagedHalves / 2, mmaScratchFloats);
        var matrixScratch = SharedMemory.GetDynamic<int>().SubView(StagedHalves / 2 + mmaScratchFloats);
        var tileA = shared.SubView(0, StagedHalvesA);
        var tileB = shared.SubView(StagedHalvesA, BlockN * NMajorB.Stride);
        const int tileBStart = StagedHalvesA;

        var tile = default(WarpTile32x32);
        for (int k0 = 0; k0 < p.K; k0 += BlockK)
        {
            default(TOperandA).Stage(a, tileA, p, batch, m0, k0, thread);
            default(TOperandB).Stage(b, tileB, p, batch, k0, n0, thread);
            Group.Barrier();
            for (int kk = 0; kk < BlockK; kk += 16)
            {
                var a0 = default(TOperandA).Load(shared, kk, warpRow, lane, matrixScratch);
                var a1 = default(TOperandA).Load(shared, kk, warpRow + 16, lane, matrixScratch);
                var (b0, b1) = default(TOperandB).Load(shared, tileBStart, kk, warpColumn, lane, matrixScratch);
                var (b2, b3) = default(TOperandB).Load(shared, tileBStart, kk, warpColumn + 16, lane, matrixScratch);
                WarpMma.MultiplyAccumulate<TFormat>(ref tile.C00, a0, b0, mmaScratch);
                WarpMma.MultiplyAccumulate<TFormat>(ref tile.C01, a0, b1, mmaScratch);
                WarpMma.MultiplyAccumulate<TFormat>(ref tile.C02, a0, b2, mmaScratch);
                WarpMma.MultiplyAccumulate<TFormat>(ref tile.C03, a0, b3, mmaScratch);
                WarpMma.MultiplyAccumulate<TFormat>(ref tile.C10, a1, b0, mmaScratch);
                WarpMma.MultiplyAccumulate<TFormat>(ref tile.C11, a1, b1, mmaScratch);
                WarpMma.MultiplyAccumulate<TFormat>(ref tile.C12, a1, b2, mmaScratch);
                WarpMma.MultiplyAccumulate<TFormat>(ref tile.C13, a1, b3, mmaScratch);
            }
            // The staged step is overwritten next: every warp must be done reading it.
            Group.Barrier();
        }

        int row = m0 + warpRow, column = n0 + warpColumn;
        Store(p, c, bias, batch, row, column, lane, tile.C00);
        Store(p, c, bias, batch, row, column + 8, lane, tile.C01);
        Store(p, c, bias, batch, row, column + 16, lane, tile.C02);
        Store(p, c, bias, batch, row, column + 24, lane, tile.C03);
        Store(p, c, bias, batch, row + 16, column, lane, tile.C10);
        Store(p, c, bias, batch, row + 16, column + 8, lane, tile.C11);
        Store(p, c, bias, batch, row + 16, column + 16, lane, tile.C12);
        Store(p, c, bias, batch, row + 16, column + 24, lane, tile.C13);
    }

    /// <summary>The epilogue of one m16n8 accumulator whose top-left element is C[row, column]; elements outside M or N are dropped.</summary>
    private static void Store<TOutput>(MatMulProblem p, TOutput c, ArrayView<float> bias, int batch, int row, int column, int lane,
        MmaAccumulator accumulator)
        where TOutput : struct, IGemmOutput
    {
        StoreElement(p, c, bias, batch, row + MmaLayout.CRow(lane, 0), column + MmaLayout.CCol(lane, 0), accumulator.C0);
        StoreElement(p, c, bias, batch, row + MmaLayout.CRow(lane, 1), column + MmaLayout.CCol(lane, 1), accumulator.C1);
        StoreElement(p, c, bias, batch, row + MmaLayout.CRow(lane, 2), column + MmaLayout.CCol(lane, 2), accumulator.C2);
        StoreElement(p, c, bias, batch, row + MmaLayout.CRow(lane, 3), column + MmaLayout.CCol(lane, 3), accumulator.C3);
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
