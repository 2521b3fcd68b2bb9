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

/// <summary>Matrix multiplication kernels, baseline and tiled, with the same semantics.</summary>
public static class MatMulKernels
{
    /// <summary>Each thread of the tiled kernel computes this many rows and columns of C.</summary>
    public const int RegisterBlock = 4;

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
    /// Shared-memory tiled matmul with a 4×4 register block per thread.
    /// Launch: group (TX, TY), grid (⌈N/(4·TX)⌉, ⌈M/(4·TY)⌉, batch); dynamic shared memory of
    /// tileK·4·(TX+TY) floats. A group computes a (4·TY)×(4·TX) tile of C, thread (tx, ty) the rows
    /// ty + i·TY and columns tx + j·TX, so that shared reads and global stores are contiguous across tx.
    /// </summary>
    public static void Tiled(ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> bias,
        MatMulProblem p, int tileK)
    {
        int tx = Group.IdxX, ty = Group.IdxY;
        int groupX = Group.DimX, groupY = Group.DimY;
        int threads = groupX * groupY;
        int thread = ty * groupX + tx;
        int tileM = RegisterBlock * groupY, tileN = RegisterBlock * groupX;
        int rowBase = Grid.IdxY * tileM, colBase = Grid.IdxX * tileN, batch = Grid.IdxZ;

        var shared = SharedMemory.GetDynamic<float>();
        var tileA = shared.SubView(0, tileK * tileM);          // [k][m]
        var tileB = shared.SubView(tileK * tileM, tileK * tileN); // [k][n]

        Float4 acc0 = default, acc1 = default, acc2 = default, acc3 = default;

        for (int k0 = 0; k0 < p.K; k0 += tileK)
        {
            // Walk the stored layout's contiguous dimension fastest so global loads coalesce.
            for (int e = thread; e < tileK * tileM; e += threads)
            {
                int kk, mm;
                if (p.TransA != 0) { kk = e / tileM; mm = e % tileM; }
                else { mm = e / tileK; kk = e % tileK; }
                int m = rowBase + mm, k = k0 + kk;
                tileA[kk * tileM + mm] = m < p.M && k < p.K ? a[p.OffsetA(batch, m, k)] : 0f;
            }
            for (int e = thread; e < tileK * tileN; e += threads)
            {
                int kk, nn;
                if (p.TransB != 0) { nn = e / tileK; kk = e % tileK; }
                else { kk = e / tileN; nn = e % tileN; }
                int n = colBase + nn, k = k0 + kk;
                tileB[kk * tileN + nn] = n < p.N && k < p.K ? b[p.OffsetB(batch, k, n)] : 0f;
            }
            Group.Barrier();

            for (int kk = 0; kk < tileK; kk++)
            {
                int aRow = kk * tileM + ty, bRow = kk * tileN + tx;
                Float4 bv;
                bv.X = tileB[bRow];
                bv.Y = tileB[bRow + groupX];
                bv.Z = tileB[bRow + 2 * groupX];
                bv.W = tileB[bRow + 3 * groupX];
                acc0.MultiplyAdd(tileA[aRow], bv);
                acc1.MultiplyAdd(tileA[aRow + groupY], bv);
                acc2.MultiplyAdd(tileA[aRow + 2 * groupY], bv);
                acc3.MultiplyAdd(tileA[aRow + 3 * groupY], bv);
            }
            Group.Barrier();
        }

        StoreRow(p, c, bias, batch, rowBase + ty, colBase + tx, groupX, acc0);
        StoreRow(p, c, bias, batch, rowBase + ty + groupY, colBase + tx, groupX, acc1);
        StoreRow(p, c, bias, batch, rowBase + ty + 2 * groupY, colBase + tx, groupX, acc2);
        StoreRow(p, c, bias, batch, rowBase + ty + 3 * groupY, colBase + tx, groupX, acc3);
    }

    /// <summary>Writes the epilogue of one finished dot product into C.</summary>
    private static void Store(MatMulProblem p, ArrayView<float> c, ArrayView<float> bias, int batch, int m, int n, float dot)
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
