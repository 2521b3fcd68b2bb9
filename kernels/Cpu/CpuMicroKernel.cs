using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// The register-blocked inner product every managed matmul-like loop ends in: a <see cref="Rows"/>×<see cref="Columns"/>
/// tile of C from <see cref="Rows"/> rows of A (any row stride) and a B panel of <see cref="Columns"/> contiguous
/// floats per k. With AVX2 the 6×16 tile is 12 accumulator registers, 2 B loads and 6 broadcasts per k — 15 of the
/// 16 ymm registers, 12 FMAs per 8 loads, so the loop is bound by the FMA units rather than by loads.
/// </summary>
public static unsafe class CpuMicroKernel
{
    /// <summary>Rows of a tile.</summary>
    public const int Rows = 6;

    /// <summary>Columns of a tile: two 8-float vectors.</summary>
    public const int Columns = 16;

    /// <summary>
    /// c[r·ldc + j] = (accumulate ? c[r·ldc + j] : 0) + Σₚ a[r·lda + p]·b[p·ldb + j] for r &lt; 6, j &lt; 16, p &lt; k.
    /// Every one of the 6 rows and 16 columns is read and written: callers pad.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile(int k, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool accumulate)
    {
        if (!CpuFeatures.Vector256Paths)
        {
            TileScalar(k, a, lda, b, ldb, c, ldc, accumulate);
            return;
        }
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        float* a0 = a, a1 = a + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda;
        for (int p = 0; p < k; p++)
        {
            var b0 = Vector256.Load(b);
            var b1 = Vector256.Load(b + 8);
            b += ldb;
            var x = Vector256.Create(a0[p]);
            c00 = MultiplyAdd(x, b0, c00);
            c01 = MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a1[p]);
            c10 = MultiplyAdd(x, b0, c10);
            c11 = MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a2[p]);
            c20 = MultiplyAdd(x, b0, c20);
            c21 = MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a3[p]);
            c30 = MultiplyAdd(x, b0, c30);
            c31 = MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a4[p]);
            c40 = MultiplyAdd(x, b0, c40);
            c41 = MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a5[p]);
            c50 = MultiplyAdd(x, b0, c50);
            c51 = MultiplyAdd(x, b1, c51);
        }
        StoreRow(c, c00, c01, accumulate);
        StoreRow(c + ldc, c10, c11, accumulate);
        StoreRow(c + 2 * ldc, c20, c21, accumulate);
        StoreRow(c + 3 * ldc, c30, c31, accumulate);
        StoreRow(c + 4 * ldc, c40, c41, accumulate);
        StoreRow(c + 5 * ldc, c50, c51, accumulate);
    }

    /// <summary>a·b + c, one instruction where the CPU has FMA.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

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

    private static void TileScalar(int k, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool accumulate)
    {
        for (int r = 0; r < Rows; r++)
        {
            for (int j = 0; j < Columns; j++)
            {
                float sum = 0f;
                for (int p = 0; p < k; p++)
                    sum += a[r * lda + p] * b[p * ldb + j];
                c[r * ldc + j] = accumulate ? c[r * ldc + j] + sum : sum;
            }
        }
    }
}
