using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// The register-blocked inner product every managed matmul-like loop ends in: a <see cref="Rows"/>×<see cref="Columns"/>
/// tile of C from <see cref="Rows"/> rows of A (any row and depth strides, so A may be stored transposed) and a B
/// panel of <see cref="Columns"/> contiguous floats per k. Its shape follows the widest vectors the CPU runs at full speed:
/// <list type="bullet">
/// <item>AVX-512 (Vector512): 8×32 — 16 zmm accumulators, 2 B loads and 8 broadcasts per k, 16 FMAs per 10 loads,
/// well inside the 32 zmm registers;</item>
/// <item>AVX2 (Vector256): 6×16 — 12 ymm accumulators, 2 B loads and 6 broadcasts per k, 15 of the 16 ymm registers;</item>
/// <item>otherwise scalar loops over a 6×16 tile.</item>
/// </list>
/// Either way the loop is bound by the FMA units rather than by loads. The two vector widths are written out separately
/// (unlike the loops over <see cref="CpuVector.ILanes{TVector}"/>): their tiles differ in shape, not only in vector type —
/// 16 named zmm accumulators against 12 ymm — so one generic body cannot hold both in registers.
/// </summary>
public static unsafe class CpuMicroKernel
{
    /// <summary>Rows of a tile.</summary>
    public static readonly int Rows = CpuFeatures.Vector512Paths ? 8 : 6;

    /// <summary>Columns of a tile: two vectors.</summary>
    public static readonly int Columns = CpuFeatures.Vector512Paths ? 32 : 16;

    /// <summary>
    /// c[r·ldc + j] = (accumulate ? c[r·ldc + j] : 0) + Σₚ a[r·lda + p]·b[p·ldb + j] for r &lt; Rows, j &lt; Columns, p &lt; k.
    /// Every row and column of the tile is read and written: callers pad.
    /// </summary>
    public static void Tile(int k, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool accumulate) =>
        Tile(k, a, lda, 1, b, ldb, c, ldc, accumulate);

    /// <summary>
    /// The same with A read as a[r·rowStride + p·depthStride]: depthStride 1 is row-major A, rowStride 1 is A stored
    /// transposed (as the attention's weights are, one column per query).
    /// </summary>
    public static void Tile(int k, float* a, nint rowStride, nint depthStride, float* b, nint ldb, float* c, nint ldc, bool accumulate)
    {
        if (CpuFeatures.Vector512Paths)
            Tile8x32(k, a, rowStride, depthStride, b, ldb, c, ldc, accumulate);
        else if (CpuFeatures.Vector256Paths)
            Tile6x16(k, a, rowStride, depthStride, b, ldb, c, ldc, accumulate);
        else
            TileScalar(k, a, rowStride, depthStride, b, ldb, c, ldc, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile8x32(int k, float* a, nint lda, nint depthStride, float* b, nint ldb, float* c, nint ldc, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        nint o2 = 2 * lda, o3 = 3 * lda, o4 = 4 * lda, o5 = 5 * lda, o6 = 6 * lda, o7 = 7 * lda;
        for (int p = 0; p < k; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            b += ldb;
            var x = Vector512.Create(a[0]);
            c00 = CpuVector.MultiplyAdd(x, b0, c00);
            c01 = CpuVector.MultiplyAdd(x, b1, c01);
            x = Vector512.Create(a[lda]);
            c10 = CpuVector.MultiplyAdd(x, b0, c10);
            c11 = CpuVector.MultiplyAdd(x, b1, c11);
            x = Vector512.Create(a[o2]);
            c20 = CpuVector.MultiplyAdd(x, b0, c20);
            c21 = CpuVector.MultiplyAdd(x, b1, c21);
            x = Vector512.Create(a[o3]);
            c30 = CpuVector.MultiplyAdd(x, b0, c30);
            c31 = CpuVector.MultiplyAdd(x, b1, c31);
            x = Vector512.Create(a[o4]);
            c40 = CpuVector.MultiplyAdd(x, b0, c40);
            c41 = CpuVector.MultiplyAdd(x, b1, c41);
            x = Vector512.Create(a[o5]);
            c50 = CpuVector.MultiplyAdd(x, b0, c50);
            c51 = CpuVector.MultiplyAdd(x, b1, c51);
            x = Vector512.Create(a[o6]);
            c60 = CpuVector.MultiplyAdd(x, b0, c60);
            c61 = CpuVector.MultiplyAdd(x, b1, c61);
            x = Vector512.Create(a[o7]);
            c70 = CpuVector.MultiplyAdd(x, b0, c70);
            c71 = CpuVector.MultiplyAdd(x, b1, c71);
            a += depthStride;
        }
        StoreRow(c, c00, c01, accumulate);
        StoreRow(c + ldc, c10, c11, accumulate);
        StoreRow(c + 2 * ldc, c20, c21, accumulate);
        StoreRow(c + 3 * ldc, c30, c31, accumulate);
        StoreRow(c + 4 * ldc, c40, c41, accumulate);
        StoreRow(c + 5 * ldc, c50, c51, accumulate);
        StoreRow(c + 6 * ldc, c60, c61, accumulate);
        StoreRow(c + 7 * ldc, c70, c71, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile6x16(int k, float* a, nint lda, nint depthStride, float* b, nint ldb, float* c, nint ldc, bool accumulate)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        nint o2 = 2 * lda, o3 = 3 * lda, o4 = 4 * lda, o5 = 5 * lda;
        for (int p = 0; p < k; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            b += ldb;
            var x = Vector256.Create(a[0]);
            c00 = CpuVector.MultiplyAdd(x, b0, c00);
            c01 = CpuVector.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a[lda]);
            c10 = CpuVector.MultiplyAdd(x, b0, c10);
            c11 = CpuVector.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a[o2]);
            c20 = CpuVector.MultiplyAdd(x, b0, c20);
            c21 = CpuVector.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a[o3]);
            c30 = CpuVector.MultiplyAdd(x, b0, c30);
            c31 = CpuVector.MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a[o4]);
            c40 = CpuVector.MultiplyAdd(x, b0, c40);
            c41 = CpuVector.MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a[o5]);
            c50 = CpuVector.MultiplyAdd(x, b0, c50);
            c51 = CpuVector.MultiplyAdd(x, b1, c51);
            a += depthStride;
        }
        StoreRow(c, c00, c01, accumulate);
        StoreRow(c + ldc, c10, c11, accumulate);
        StoreRow(c + 2 * ldc, c20, c21, accumulate);
        StoreRow(c + 3 * ldc, c30, c31, accumulate);
        StoreRow(c + 4 * ldc, c40, c41, accumulate);
        StoreRow(c + 5 * ldc, c50, c51, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, Vector512<float> low, Vector512<float> high, bool accumulate)
    {
        if (accumulate)
        {
            low += Vector512.Load(c);
            high += Vector512.Load(c + 16);
        }
        low.Store(c);
        high.Store(c + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, Vector256<float> low, Vector256<float> high, bool accumulate)
    {
        if (accumulate)
        {
            low += Vector256.Load(c);
            high += Vector256.Load(c + 8);
        }
        low.Store(c);
        high.Store(c + 8);
    }

    private static void TileScalar(int k, float* a, nint lda, nint depthStride, float* b, nint ldb, float* c, nint ldc, bool accumulate)
    {
        for (int r = 0; r < Rows; r++)
        {
            for (int j = 0; j < Columns; j++)
            {
                float sum = 0f;
                for (int p = 0; p < k; p++)
                    sum += a[r * lda + p * depthStride] * b[p * ldb + j];
                c[r * ldc + j] = accumulate ? c[r * ldc + j] + sum : sum;
            }
        }
    }
}
