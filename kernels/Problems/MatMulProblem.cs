namespace GpuAttention.Problems;

/// <summary>
/// C[b] = act(alpha·op(A[b])·op(B[b]) + beta·C[b] + bias) over <see cref="Batch"/> entries, row-major, with element
/// strides between batch entries (0 shares an operand across the batch).
/// </summary>
public struct MatMulProblem
{
    /// <summary>Batch entries.</summary>
    public int Batch;
    /// <summary>Rows of op(A) and C.</summary>
    public int M;
    /// <summary>Columns of op(B) and C.</summary>
    public int N;
    /// <summary>Columns of op(A), rows of op(B).</summary>
    public int K;
    /// <summary>Row stride of A as stored (K when not transposed, M when transposed).</summary>
    public int Lda;
    /// <summary>Row stride of B as stored (N when not transposed, K when transposed).</summary>
    public int Ldb;
    /// <summary>Row stride of C.</summary>
    public int Ldc;
    /// <summary>Element strides between batch entries.</summary>
    public long BatchStrideA, BatchStrideB, BatchStrideC;
    /// <summary>Non-zero: A is stored K×M and used transposed.</summary>
    public int TransA;
    /// <summary>Non-zero: B is stored N×K and used transposed (PyTorch's Linear weights).</summary>
    public int TransB;
    /// <summary>Scale of the product.</summary>
    public float Alpha;
    /// <summary>Scale of the existing C; when 0, C is never read (so it may hold garbage or NaN).</summary>
    public float Beta;
    /// <summary>Non-zero: add bias[n] to every row.</summary>
    public int HasBias;
    /// <summary>An <see cref="Problems.Activation"/> value applied last.</summary>
    public int Activation;

    /// <summary>Offset of op(A)[m, k] of batch entry <paramref name="batch"/>.</summary>
    public readonly long OffsetA(int batch, int m, int k) =>
        batch * BatchStrideA + (TransA != 0 ? (long)k * Lda + m : (long)m * Lda + k);

    /// <summary>Offset of op(B)[k, n] of batch entry <paramref name="batch"/>.</summary>
    public readonly long OffsetB(int batch, int k, int n) =>
        batch * BatchStrideB + (TransB != 0 ? (long)n * Ldb + k : (long)k * Ldb + n);

    /// <summary>Offset of C[m, n] of batch entry <paramref name="batch"/>.</summary>
    public readonly long OffsetC(int batch, int m, int n) => batch * BatchStrideC + (long)m * Ldc + n;

    /// <summary>Multiply-adds of the whole product.</summary>
    public readonly long MultiplyAdds => (long)Batch * M * N * K;
}
