using GpuAttention.Problems;
using ILGPU;

namespace GpuAttention.Kernels;

/// <summary>Four floats kept in registers: one row of a thread's 4×4 register block.</summary>
public struct Float4
{
    /// <summary>Components.</summary>
    public float X, Y, Z, W;

    /// <summary>this += a·b, component-wise over b.</summary>
    public void MultiplyAdd(float a, Float4 b)
    {
        X += a * b.X;
        Y += a * b.Y;
        Z += a * b.Z;
        W += a * b.W;
    }

    /// <summary>Component <paramref name="i"/> (0..3).</summary>
    public readonly float Get(int i) => i == 0 ? X : i == 1 ? Y : i == 2 ? Z : W;
}

/// <summary>
/// The tiled matmul's launch shape as a type: threads per group along N (X) and M (Y), and the depth of the K slice staged
/// per step. Specialising the kernel on it makes every tile size a compile-time constant, so the shared-memory reads of its
/// inner loop are one register plus an immediate offset and its staging divides by constants (shifts). The shapes compiled
/// are <see cref="MatMulKernels.CompiledTiles"/>.
/// </summary>
public interface IMatMulTile
{
    /// <summary>Threads along N; the tile is 4× this wide.</summary>
    int GroupX { get; }

    /// <summary>Threads along M; the tile is 4× this tall.</summary>
    int GroupY { get; }

    /// <summary>Rows of op(B) (columns of op(A)) per staged slice.</summary>
    int Depth { get; }
}

/// <summary>16×16 threads (a 64×64 tile), 16-deep slices: <c>LaunchProfile.Gpu</c>.</summary>
public readonly struct Threads16x16Depth16 : IMatMulTile
{
    /// <inheritdoc />
    public int GroupX => 16;
    /// <inheritdoc />
    public int GroupY => 16;
    /// <inheritdoc />
    public int Depth => 16;
}

/// <summary>16×16 threads, 8-deep slices (half the shared memory, twice the barriers).</summary>
public readonly struct Threads16x16Depth8 : IMatMulTile
{
    /// <inheritdoc />
    public int GroupX => 16;
    /// <inheritdoc />
    public int GroupY => 16;
    /// <inheritdoc />
    public int Depth => 8;
}

/// <summary>16×16 threads, 32-deep slices (half the barriers, 33 KB of shared memory).</summary>
public readonly struct Threads16x16Depth32 : IMatMulTile
{
    /// <inheritdoc />
    public int GroupX => 16;
    /// <inheritdoc />
    public int GroupY => 16;
    /// <inheritdoc />
    public int Depth => 32;
}

/// <summary>8×8 threads, 16-deep slices: <c>LaunchProfile.OpenCLCpu</c>.</summary>
public readonly struct Threads8x8Depth16 : IMatMulTile
{
    /// <inheritdoc />
    public int GroupX => 8;
    /// <inheritdoc />
    public int GroupY => 8;
    /// <inheritdoc />
    public int Depth => 16;
}

/// <summary>4×8 threads, 16-deep slices: <c>LaunchProfile.CpuAccelerator</c> (32 threads keep its barriers cheap).</summary>
public readonly struct Threads4x8Depth16 : IMatMulTile
{
    /// <inheritdoc />
    public int GroupX => 4;
    /// <inheritdoc />
    public int GroupY => 8;
    /// <inheritdoc />
    public int Depth => 16;
}

/// <summary>Matrix multiplication kernels, baseline and tiled, with the same semantics.</summary>
public static class MatMulKernels
{
    /// <summary>Each thread of the tiled kernel computes this many rows and columns of C.</summary>
    public const int RegisterBlock = 4;

    /// <summary>
    /// Floats of padding after each staged row of the tiled kernel's shared tiles. A tile staged from a layout whose
    /// contiguous dimension is K (A as stored, B transposed — a Linear weight) is written with K varying fastest across
    /// the threads; rows of 64 floats would put 16 threads on one bank, rows of 66 put them on 16 different even banks and
    /// the next 16 threads on the odd ones.
    /// </summary>
    public const int TilePadding = 2;

    /// <summary>
    /// The launch shapes the tiled kernel is compiled for. Each holds TX and TY multiples of 4 and TX·TY a multiple of the
    /// depth, which its staging relies on (a thread keeps a fixed place along a tile's contiguous dimension).
    /// </summary>
    public static IReadOnlyList<IMatMulTile> CompiledTiles { get; } =
        [new Threads16x16Depth16(), new Threads16x16Depth8(), new Threads16x16Depth32(), new Threads8x8Depth16(), new Threads4x8Depth16()];

    /// <summary><see cref="Tiled{TTile}"/> specialised for <paramref name="tile"/>, one of <see cref="CompiledTiles"/>.</summary>
    public static Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulProblem> TiledFor(IMatMulTile tile) =>
        typeof(MatMulKernels).GetMethod(nameof(Tiled))!.MakeGenericMethod(tile.GetType())
            .CreateDelegate<Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulProblem>>();

    /// <summary>Floats of dynamic shared memory the tiled kernel needs.</summary>
    public static int TiledSharedFloats(int depth, int groupX, int groupY) =>
        depth * (RegisterBlock * groupY + TilePadding + RegisterBlock * groupX + TilePadding);

    /// <summary>
    /// Baseline: one thread per output element, no shared memory.
    /// Launch: auto-grouped over Index3D(N, M, batch).
    /// </summary>
    public static void Naive(Index3D index, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> bias, MatMulProblem p)
    {
        int n = index.X, m = index.Y, batch = index.Z;
        float dot = 0f;
        for (int k = 0; k < p.K; k++)
            dot += a[p.OffsetA(batch, m, k)] * b[p.OffsetB(batch, k, n)];
        Store(p, c, bias, batch, m, n, dot);
    }

    /// <summary>
    /// Shared-memory tiled matmul with a 4×4 register block per thread, launched in the shape <typeparamref name="TTile"/>.
    /// Launch: group (TX, TY), grid (⌈N/(4·TX)⌉, ⌈M/(4·TY)⌉, batch); dynamic shared memory of
    /// <see cref="TiledSharedFloats"/>. A group computes a (4·TY)×(4·TX) tile of C, thread (tx, ty) the rows
    /// ty + i·TY and columns tx + j·TX, so that shared reads and global stores are contiguous across tx. Global loads walk
    /// each operand's contiguous dimension fastest (coalesced); shared rows are padded (<see cref="TilePadding"/>) so those
    /// stores are free of bank conflicts for every transpose combination.
    /// </summary>
    public static void Tiled<TTile>(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> bias,
        MatMulProblem p) where TTile : struct, IMatMulTile
    {
        var shape = default(TTile);
        int tileK = shape.Depth, groupX = shape.GroupX, groupY = shape.GroupY;
        int tx = Group.IdxX, ty = Group.IdxY;
        int threads = groupX * groupY;
        int thread = ty * groupX + tx;
        int tileM = RegisterBlock * groupY, tileN = RegisterBlock * groupX;
        int rowBase = Grid.IdxY * tileM, colBase = Grid.IdxX * tileN, batch = Grid.IdxZ;

        int strideA = tileM + TilePadding, strideB = tileN + TilePadding;
        var shared = SharedMemory.GetDynamic<float>();
        var tileA = shared.SubView(0, tileK * strideA);              // [k][m]
        var tileB = shared.SubView(tileK * strideA, tileK * strideB); // [k][n]

        Float4 acc0 = default, acc1 = default, acc2 = default, acc3 = default;

        // Each thread stages elements thread, thread + G, … of a tile, walking the stored layout's contiguous dimension
        // fastest so global loads coalesce. G is a multiple of the tile's extent along that dimension (LaunchProfile checks
        // it), so a thread's position along it is fixed and the other coordinate advances by a constant.
        long baseA = batch * p.BatchStrideA, baseB = batch * p.BatchStrideB;
        for (int k0 = 0; k0 < p.K; k0 += tileK)
        {
            if (p.TransA == 0)
                StageAlongK(a, tileA, baseA, p.Lda, rowBase, p.M, k0, p.K, tileK, tileM, strideA, thread, threads);
            else
                StageAcrossK(a, tileA, baseA, p.Lda, rowBase, p.M, k0, p.K, tileK, tileM, strideA, thread, threads);
            if (p.TransB != 0)
                StageAlongK(b, tileB, baseB, p.Ldb, colBase, p.N, k0, p.K, tileK, tileN, strideB, thread, threads);
            else
                StageAcrossK(b, tileB, baseB, p.Ldb, colBase, p.N, k0, p.K, tileK, tileN, strideB, thread, threads);
            Group.Barrier();

            // Four steps of the slice per iteration, written out (ILGPU does not unroll): 64 FFMAs against 32 shared loads
            // and one loop test. Every depth is a multiple of four. The loads address views taken once per iteration at
            // constant offsets, which ptxas folds into the loads (LDS [R+imm]); offsets added in 32 bits before the
            // widening to an address cost an IADD and a LEA per load.
            for (int kk = 0; kk < tileK; kk += 4)
            {
                var aColumn = tileA.SubView(kk * strideA + ty);
                var bRow = tileB.SubView(kk * strideB + tx);
                Step(aColumn, bRow, 0, 0, groupX, groupY, ref acc0, ref acc1, ref acc2, ref acc3);
                Step(aColumn, bRow, strideA, strideB, groupX, groupY, ref acc0, ref acc1, ref acc2, ref acc3);
                Step(aColumn, bRow, 2 * strideA, 2 * strideB, groupX, groupY, ref acc0, ref acc1, ref acc2, ref acc3);
                Step(aColumn, bRow, 3 * strideA, 3 * strideB, groupX, groupY, ref acc0, ref acc1, ref acc2, ref acc3);
            }
            Group.Barrier();
        }

        StoreRow(p, c, bias, batch, rowBase + ty, colBase + tx, groupX, acc0);
        StoreRow(p, c, bias, batch, rowBase + ty + groupY, colBase + tx, groupX, acc1);
        StoreRow(p, c, bias, batch, rowBase + ty + 2 * groupY, colBase + tx, groupX, acc2);
        StoreRow(p, c, bias, batch, rowBase + ty + 3 * groupY, colBase + tx, groupX, acc3);
    }

    /// <summary>
    /// Stages a slice of an operand stored with K contiguous (A as stored, B transposed): tile[kk, x] =
    /// source[(x0 + x)·ld + k0 + kk] for x &lt; <paramref name="width"/>, zero past <paramref name="extent"/> or K. A thread's
    /// kk is fixed (G is a multiple of the depth) and x advances by G / depth. The tile sizes are the kernel's constants.
    /// </summary>
    /// <remarks>
    /// The source position advances as a loop variable rather than being recomputed from x: ILGPU's O2 code placement moves
    /// loop-invariant values next to their uses, into the loop, where ptxas left a 64-bit multiply per staged element.
    /// </remarks>
    private static void StageAlongK(ArrayView<float> source, ArrayView<float> tile, long batchBase, int ld, int x0, int extent,
        int k0, int k, int depth, int width, int tileStride, int thread, int threads)
    {
        int kk = thread % depth, x = thread / depth, xStep = threads / depth;
        bool kInside = k0 + kk < k;
        long g = batchBase + (long)(x0 + x) * ld + k0 + kk;
        long gStep = (long)xStep * ld;
        for (; x < width; x += xStep, g += gStep)
            tile[kk * tileStride + x] = kInside && x0 + x < extent ? source[g] : 0f;
    }

    /// <summary>
    /// Stages a slice of an operand stored with its M or N contiguous (A transposed, B as stored): tile[kk, x] =
    /// source[(k0 + kk)·ld + x0 + x], zero outside. A thread's x is fixed (G is a multiple of the tile's width) and kk
    /// advances by G / width.
    /// </summary>
    private static void StageAcrossK(ArrayView<float> source, ArrayView<float> tile, long batchBase, int ld, int x0, int extent,
        int k0, int k, int depth, int width, int tileStride, int thread, int threads)
    {
        int x = thread % width, kk = thread / width, kkStep = threads / width;
        bool xInside = x0 + x < extent;
        long g = batchBase + (long)(k0 + kk) * ld + x0 + x;
        long gStep = (long)kkStep * ld;
        for (; kk < depth; kk += kkStep, g += gStep)
            tile[kk * tileStride + x] = xInside && k0 + kk < k ? source[g] : 0f;
    }

    /// <summary>One step of the slice: the thread's 4×4 block += A's tile at <c>a[aOffset]</c> (4 rows, TY apart) ⊗ B's at <c>b[bOffset]</c> (4 columns, TX apart).</summary>
    private static void Step(ArrayView<float> a, ArrayView<float> b, int aOffset, int bOffset, int groupX, int groupY,
        ref Float4 acc0, ref Float4 acc1, ref Float4 acc2, ref Float4 acc3)
    {
        Float4 bv;
        bv.X = b[bOffset];
        bv.Y = b[bOffset + groupX];
        bv.Z = b[bOffset + 2 * groupX];
        bv.W = b[bOffset + 3 * groupX];
        acc0.MultiplyAdd(a[aOffset], bv);
        acc1.MultiplyAdd(a[aOffset + groupY], bv);
        acc2.MultiplyAdd(a[aOffset + 2 * groupY], bv);
        acc3.MultiplyAdd(a[aOffset + 3 * groupY], bv);
    }

    /// <summary>Writes the epilogue of one finished dot product into C (the half-precision GEMM shares it).</summary>
    internal static void Store(MatMulProblem p, ArrayView<float> c, ArrayView<float> bias, int batch, int m, int n, float dot)
    {
        long index = p.OffsetC(batch, m, n);
        float value = p.Alpha * dot;
        if (p.Beta != 0f)
            value += p.Beta * c[index];
        if (p.HasBias != 0)
            value += bias[n];
        c[index] = ActivationMath.Apply(value, p.Activation);
    }

    private static void StoreRow(MatMulProblem p, ArrayView<float> c, ArrayView<float> bias, int batch, int m,
        int n0, int colStride, Float4 row)
    {
        if (m >= p.M)
            return;
        for (int j = 0; j < RegisterBlock; j++)
        {
            int n = n0 + j * colStride;
            if (n < p.N)
                Store(p, c, bias, batch, m, n, row.Get(j));
        }
    }
}
