using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using GpuAttention.Problems;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// The managed CPU matmul, same contract as <see cref="MatMulKernels"/>: C[b] = act(alpha·op(A[b])·op(B[b]) + beta·C[b] + bias).
/// Blocked like BLIS/GotoBLAS: op(B) is packed (once, or taken from a weight's kept copy) into K slices of at most
/// <see cref="MaxDepth"/> and panels as wide as <see cref="CpuMicroKernel"/> (a panel stays in L1 while rows of A
/// stream past it). C is split into tasks of at most 256×512 (≤ 512 KB, so a task's C stays in L2 while it runs every
/// K slice over it); per slice a task packs its <see cref="RowBlock"/> rows of op(A) (transposed or not, zero-padded to
/// whole micro-tiles) and runs the micro-kernel over every panel of its columns. A decoding step's products (M ≤
/// <see cref="SkinnyRows"/>) skip the packing, which would cost as much as the product: they are dot products
/// (B transposed, PyTorch's Linear layout) or row updates.
/// </summary>
public static unsafe class CpuMatMul
{
    /// <summary>Row count up to which a product runs as dot products / row updates instead of packed tiles.</summary>
    public const int SkinnyRows = 4;

    /// <summary>Deepest K slice: a panel of it (16 KB at 16 columns, 32 KB at 32) stays in a 48 KB L1 beside the tile.</summary>
    public const int MaxDepth = 256;

    /// <summary>Rows of op(A) a task packs at once (16 tiles; 96–128 KB at full depth, resident in L2).</summary>
    public static int RowBlock => 16 * CpuMicroKernel.Rows;

    private static int Columns => CpuMicroKernel.Columns;

    /// <summary>Rows and columns of C one task covers at most: 512 KB of C, which stays in a 1 MB L2.</summary>
    private const int TaskRows = 256, TaskColumns = 512;

    /// <summary>Batch entries whose product is below this many multiply-adds run one per task rather than each spread over the cores.</summary>
    private const long SmallProduct = 1 << 21;

    /// <summary>
    /// Runs the whole batched product; returns when C is written. <paramref name="packedB"/>, when not null, is op(B)
    /// already packed by <see cref="PackAll"/> (a weight reused across calls), and B itself is not read.
    /// </summary>
    public static void Multiply(CpuExecution execution, float* a, float* b, float* c, float* bias, MatMulProblem p, float* packedB = null)
    {
        long work = (long)p.M * p.N * p.K;
        if (p.Batch > 1 && work < SmallProduct)
        {
            nint aAddress = (nint)a, bAddress = (nint)b, cAddress = (nint)c, biasAddress = (nint)bias;
            nint packedAddress = (nint)packedB;
            execution.For(p.Batch, e => Entry(execution, (float*)aAddress + e * p.BatchStrideA, (float*)bAddress + e * p.BatchStrideB,
                (float*)cAddress + e * p.BatchStrideC, (float*)biasAddress, p, (float*)packedAddress, parallel: false),
                execution.Worthwhile(p.MultiplyAdds));
            return;
        }
        bool parallel = execution.Worthwhile(work);
        for (int e = 0; e < p.Batch; e++)
            Entry(execution, a + e * p.BatchStrideA, b + e * p.BatchStrideB, c + e * p.BatchStrideC, bias, p, packedB, parallel);
    }

    /// <summary>True when a product of this shape packs B (and so can use <see cref="PackAll"/>'s result).</summary>
    public static bool PacksB(MatMulProblem p) => p.M > SkinnyRows;

    /// <summary>Floats <see cref="PackAll"/> writes for op(B) of this problem.</summary>
    public static long PackedLength(MatMulProblem p)
    {
        var (slices, depth, panels) = Blocking(p);
        return (long)slices * panels * Columns * depth;
    }

    /// <summary>
    /// Packs all of op(B) (one batch entry), slice after slice, in the layout the blocked product reads; over the
    /// cores when <paramref name="parallel"/> and the work is worth it.
    /// </summary>
    public static void PackAll(CpuExecution execution, float* b, MatMulProblem p, float* packed, bool parallel = true)
    {
        var (slices, depth, panels) = Blocking(p);
        nint bAddress = (nint)b, packedAddress = (nint)packed;
        execution.For(slices * panels, task =>
        {
            int slice = task / panels, k0 = slice * depth;
            PackB((float*)bAddress, p, k0, Math.Min(depth, p.K - k0), task % panels,
                (float*)packedAddress + (long)slice * panels * Columns * depth);
        }, parallel && execution.Worthwhile((long)p.K * p.N));
    }

    /// <summary>K slices, their depth, and panels of micro-kernel columns.</summary>
    private static (int Slices, int Depth, int Panels) Blocking(MatMulProblem p)
    {
        int slices = (p.K + MaxDepth - 1) / MaxDepth;
        return (slices, (p.K + slices - 1) / slices, (p.N + Columns - 1) / Columns);
    }

    private static void Entry(CpuExecution execution, float* a, float* b, float* c, float* bias, MatMulProblem p, float* packedB,
        bool parallel)
    {
        if (p.M <= SkinnyRows)
            Skinny(execution, a, b, c, bias, p, parallel);
        else if (packedB != null)
            Blocked(execution, a, c, bias, p, packedB, parallel);
        else
        {
            using var packed = execution.Rent(ScratchSlot.PackedB, PackedLength(p));
            PackAll(execution, b, p, packed.Pointer, parallel);
            Blocked(execution, a, c, bias, p, packed.Pointer, parallel);
        }
    }

    private static void Blocked(CpuExecution execution, float* a, float* c, float* bias, MatMulProblem p, float* packedB, bool parallel)
    {
        var (slices, depth, panels) = Blocking(p);
        int rowTiles = (p.M + CpuMicroKernel.Rows - 1) / CpuMicroKernel.Rows;

        // At least twice as many tasks as cores so uneven ones balance, and each task's block of C small enough
        // (≤ TaskRows × TaskColumns) to stay in L2 while the task runs all K slices over it: C is then read and
        // written once from memory, not once per slice.
        int target = parallel ? 2 * execution.Threads : 1;
        int rowChunks = Math.Min(rowTiles, Math.Max(target, (p.M + TaskRows - 1) / TaskRows));
        int columnChunks = Math.Min(panels, Math.Max((target + rowChunks - 1) / rowChunks, (p.N + TaskColumns - 1) / TaskColumns));
        nint aAddress = (nint)a, cAddress = (nint)c, biasAddress = (nint)bias, packedAddress = (nint)packedB;
        void Task(int task)
        {
            int rowChunk = task / columnChunks, columnChunk = task % columnChunks;
            int tile0 = Split(rowTiles, rowChunks, rowChunk), tile1 = Split(rowTiles, rowChunks, rowChunk + 1);
            int panel0 = Split(panels, columnChunks, columnChunk), panel1 = Split(panels, columnChunks, columnChunk + 1);
            for (int slice = 0; slice < slices; slice++)
            {
                int k0 = slice * depth;
                RunTask(execution, (float*)aAddress, (float*)cAddress, (float*)biasAddress,
                    (float*)packedAddress + (long)slice * panels * Columns * depth, p, k0, Math.Min(depth, p.K - k0),
                    slice == 0, slice == slices - 1, tile0, tile1, panel0, panel1);
            }
        }
        execution.For(rowChunks * columnChunks, Task, parallel);
    }

    private static int Split(int total, int parts, int part) => (int)((long)total * part / parts);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunTask(CpuExecution execution, float* a, float* c, float* bias, float* packedB, MatMulProblem p, int k0, int kc,
        bool first, bool last, int tile0, int tile1, int panel0, int panel1)
    {
        int rows = CpuMicroKernel.Rows;
        using var packedScratch = execution.Rent(ScratchSlot.PackedA, (long)RowBlock * kc);
        using var tileScratch = execution.Rent(ScratchSlot.Tile, rows * Columns);
        float* packedA = packedScratch.Pointer, tile = tileScratch.Pointer;
        for (int blockTile = tile0; blockTile < tile1; blockTile += RowBlock / rows)
        {
            int blockTiles = Math.Min(RowBlock / rows, tile1 - blockTile);
            int m0 = blockTile * rows;
            PackA(a, p, k0, kc, m0, blockTiles * rows, packedA);
            for (int panel = panel0; panel < panel1; panel++)
            {
                int n0 = panel * Columns;
                float* bPanel = packedB + (long)panel * Columns * kc;
                for (int t = 0; t < blockTiles; t++)
                {
                    int m = m0 + t * rows;
                    CpuMicroKernel.Tile(kc, packedA + (long)t * rows * kc, kc, bPanel, Columns, tile, Columns, accumulate: false);
                    Epilogue(tile, c, bias, p, m, n0, Math.Min(rows, p.M - m), Math.Min(Columns, p.N - n0), first, last);
                }
            }
        }
    }

    /// <summary>Rows m0 … m0 + count − 1 of op(A), columns k0 … k0 + kc − 1, row-major with stride kc; rows past M are zeros.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(float* a, MatMulProblem p, int k0, int kc, int m0, int count, float* packed)
    {
        for (int r = 0; r < count; r++)
        {
            float* row = packed + (long)r * kc;
            int m = m0 + r;
            if (m >= p.M)
                new Span<float>(row, kc).Clear();
            else if (p.TransA == 0)
                new ReadOnlySpan<float>(a + (long)m * p.Lda + k0, kc).CopyTo(new Span<float>(row, kc));
            else
                for (int kk = 0; kk < kc; kk++)
                    row[kk] = a[(long)(k0 + kk) * p.Lda + m];
        }
    }

    /// <summary>Panel <paramref name="panel"/> of op(B)'s slice: kc rows of <see cref="CpuMicroKernel.Columns"/> contiguous columns, zero past N.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(float* b, MatMulProblem p, int k0, int kc, int panel, float* packed)
    {
        int n0 = panel * Columns, width = Math.Min(Columns, p.N - n0);
        float* destination = packed + (long)panel * Columns * kc;
        if (p.TransB == 0)
        {
            for (int kk = 0; kk < kc; kk++)
            {
                float* source = b + (long)(k0 + kk) * p.Ldb + n0;
                float* row = destination + kk * Columns;
                if (width == Columns && CpuFeatures.Vector256Paths)
                {
                    for (int j = 0; j < Columns; j += 8)
                        Vector256.Load(source + j).Store(row + j);
                    continue;
                }
                for (int j = 0; j < Columns; j++)
                    row[j] = j < width ? source[j] : 0f;
            }
            return;
        }
        for (int j = 0; j < Columns; j++)
        {
            if (j >= width)
            {
                for (int kk = 0; kk < kc; kk++)
                    destination[kk * Columns + j] = 0f;
                continue;
            }
            float* source = b + (long)(n0 + j) * p.Ldb + k0;
            for (int kk = 0; kk < kc; kk++)
                destination[kk * Columns + j] = source[kk];
        }
    }

    /// <summary>
    /// Folds a finished tile into C: the first K slice scales it by alpha and adds beta·C (C unread when beta is 0),
    /// later slices add to C, and the last adds the bias and applies the activation.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Epilogue(float* tile, float* c, float* bias, MatMulProblem p, int m0, int n0, int rows, int columns,
        bool first, bool last)
    {
        bool vector = columns == Columns && CpuFeatures.Vector256Paths;
        var alpha = Vector256.Create(p.Alpha);
        var beta = Vector256.Create(p.Beta);
        for (int r = 0; r < rows; r++)
        {
            float* target = c + (long)(m0 + r) * p.Ldc + n0;
            float* source = tile + r * Columns;
            if (vector)
            {
                for (int j = 0; j < Columns; j += 8)
                {
                    var value = Vector256.Load(source + j) * alpha;
                    if (!first)
                        value += Vector256.Load(target + j);
                    else if (p.Beta != 0f)
                        value = CpuVector.MultiplyAdd(beta, Vector256.Load(target + j), value);
                    if (last)
                    {
                        if (p.HasBias != 0)
                            value += Vector256.Load(bias + n0 + j);
                        value = CpuVector.Activate(value, p.Activation);
                    }
                    value.Store(target + j);
                }
                continue;
            }
            for (int j = 0; j < columns; j++)
            {
                float value = p.Alpha * source[j];
                if (!first)
                    value += target[j];
                else if (p.Beta != 0f)
                    value += p.Beta * target[j];
                if (last)
                {
                    if (p.HasBias != 0)
                        value += bias[n0 + j];
                    value = ActivationMath.Apply(value, p.Activation);
                }
                target[j] = value;
            }
        }
    }

    /// <summary>M ≤ <see cref="SkinnyRows"/>: op(A)'s rows gathered once, then dot products or row updates over column chunks.</summary>
    private static void Skinny(CpuExecution execution, float* a, float* b, float* c, float* bias, MatMulProblem p, bool parallel)
    {
        using var rowsScratch = execution.Rent(ScratchSlot.PackedA, (long)p.M * p.K);
        float* rows = rowsScratch.Pointer;
        for (int m = 0; m < p.M; m++)
        {
            for (int k = 0; k < p.K; k++)
                rows[(long)m * p.K + k] = p.TransA == 0 ? a[(long)m * p.Lda + k] : a[(long)k * p.Lda + m];
        }
        const int chunk = 64;
        int chunks = (p.N + chunk - 1) / chunk;
        nint rowsAddress = (nint)rows, bAddress = (nint)b, cAddress = (nint)c, biasAddress = (nint)bias;
        void Chunk(int index)
        {
            int n0 = index * chunk, n1 = Math.Min(p.N, n0 + chunk);
            if (p.TransB != 0)
                SkinnyDots((float*)rowsAddress, (float*)bAddress, (float*)cAddress, (float*)biasAddress, p, n0, n1);
            else
                SkinnyRowUpdates(execution, (float*)rowsAddress, (float*)bAddress, (float*)cAddress, (float*)biasAddress, p, n0, n1);
        }
        if (parallel)
            execution.For(chunks, Chunk);
        else
            for (int index = 0; index < chunks; index++)
                Chunk(index);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SkinnyDots(float* rows, float* b, float* c, float* bias, MatMulProblem p, int n0, int n1)
    {
        for (int n = n0; n < n1; n++)
        {
            float* column = b + (long)n * p.Ldb;
            for (int m = 0; m < p.M; m++)
                Store(c, bias, p, m, n, CpuVector.Dot(rows + (long)m * p.K, column, p.K));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void SkinnyRowUpdates(CpuExecution execution, float* rows, float* b, float* c, float* bias, MatMulProblem p, int n0, int n1)
    {
        int width = n1 - n0;
        using var sumsScratch = execution.Rent(ScratchSlot.Tile, (long)p.M * width);
        float* sums = sumsScratch.Pointer;
        new Span<float>(sums, p.M * width).Clear();
        for (int k = 0; k < p.K; k++)
        {
            float* source = b + (long)k * p.Ldb + n0;
            for (int m = 0; m < p.M; m++)
                CpuVector.AddScaled(sums + m * width, rows[(long)m * p.K + k], source, width);
        }
        for (int m = 0; m < p.M; m++)
        {
            for (int j = 0; j < width; j++)
                Store(c, bias, p, m, n0 + j, sums[m * width + j]);
        }
    }

    private static void Store(float* c, float* bias, MatMulProblem p, int m, int n, float dot)
    {
        float* target = c + (long)m * p.Ldc + n;
        float value = p.Alpha * dot;
        if (p.Beta != 0f)
            value += p.Beta * *target;
        if (p.HasBias != 0)
            value += bias[n];
        *target = ActivationMath.Apply(value, p.Activation);
    }
}
