using GpuAttention.Backends;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Ops;

/// <summary>Which ILGPU matmul kernel to launch.</summary>
public enum MatMulAlgorithm
{
    /// <summary>The backend's choice: on ILGPU devices <see cref="Naive"/> for decode-sized products and <see cref="Tiled"/>
    /// otherwise; the managed CPU backend's one blocked algorithm.</summary>
    Auto,
    /// <summary>ILGPU: shared-memory tiles with a 4×4 register block per thread.</summary>
    Tiled,
    /// <summary>ILGPU: one thread per output element, the baseline the tiled kernel is measured against.</summary>
    Naive,
}

/// <summary>C = act(alpha·op(A)·op(B) + beta·C + bias), batched.</summary>
public static class MatMul
{
    /// <summary>
    /// Multiplies row-major matrices. <paramref name="a"/> is [M, K] ([K, M] when <paramref name="transposeA"/>)
    /// or [batch, …]; <paramref name="b"/> is [K, N] ([N, K] when <paramref name="transposeB"/>, the layout of
    /// PyTorch's Linear weights) or [batch, …]; a rank-2 operand is shared by every batch entry. <paramref name="c"/>
    /// is [M, N], or [batch, M, N] when either operand is batched. When <paramref name="beta"/> is 0, C is not read.
    /// <paramref name="bias"/> ([N]) is added to every row before <paramref name="activation"/>.
    /// <paramref name="algorithm"/> picks among the ILGPU kernels; the managed CPU backend has one algorithm and
    /// accepts only <see cref="MatMulAlgorithm.Auto"/>.
    /// <para>
    /// <paramref name="a"/> and <paramref name="b"/> may both be <see cref="DType.F16"/> or both <see cref="DType.BF16"/>
    /// (with <see cref="MatMulAlgorithm.Auto"/>): products accumulate in fp32, the epilogue (α, β·C, bias F32, activation) runs
    /// in fp32, and <paramref name="c"/> is F32 or the operands' dtype (the result rounded once to nearest-even; β·C reads
    /// its 16-bit values exactly). On CUDA that is the tensor-core kernel, either operand transposed or not; elsewhere the
    /// operands (and a 16-bit C that β reads) are widened exactly into F32 scratch, multiplied in fp32 and rounded into C.
    /// </para>
    /// </summary>
    public static void Multiply(DeviceTensor a, DeviceTensor b, DeviceTensor c, bool transposeA = false,
        bool transposeB = false, float alpha = 1f, float beta = 0f, DeviceTensor? bias = null,
        Activation activation = Activation.None, MatMulAlgorithm algorithm = MatMulAlgorithm.Auto)
    {
        Check.Usable(a, nameof(a));
        var device = a.Device;
        Check.Usable(b, nameof(b), device);
        Check.Usable(c, nameof(c), device);
        if (bias is not null)
            Check.Usable(bias, nameof(bias), device);
        Check.Rank(a, nameof(a), "([M, K] or [batch, M, K])", 2, 3);
        Check.Rank(b, nameof(b), "([K, N] or [batch, K, N])", 2, 3);
        Check.Finite(alpha, nameof(alpha));
        Check.Finite(beta, nameof(beta));
        if (!Enum.IsDefined(activation))
            throw new ArgumentOutOfRangeException(nameof(activation), activation, "Unknown activation.");
        if (!Enum.IsDefined(algorithm))
            throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "Unknown matmul algorithm.");
        if (algorithm != MatMulAlgorithm.Auto && !device.Backend.MatMulAlgorithms.Contains(algorithm))
            throw new ArgumentException(
                $"Argument 'algorithm' is {algorithm}, which {device} does not have; it offers Auto" +
                string.Concat(device.Backend.MatMulAlgorithms.Select(x => $", {x}")) + ".", nameof(algorithm));
        Check.Distinct(c, nameof(c), a, nameof(a));
        Check.Distinct(c, nameof(c), b, nameof(b));

        int aRows = a.Shape[a.Rank - 2], aCols = a.Shape[a.Rank - 1];
        int bRows = b.Shape[b.Rank - 2], bCols = b.Shape[b.Rank - 1];
        int m = transposeA ? aCols : aRows, k = transposeA ? aRows : aCols;
        int n = transposeB ? bRows : bCols;
        if ((transposeB ? bCols : bRows) != k)
            throw new ArgumentException(
                $"Argument 'b' must have shape {(b.Rank == 3 ? "[batch, " : "[")}{(transposeB ? $"N, {k}" : $"{k}, N")}] " +
                $"(K = {k} from 'a' {DeviceTensor.ShapeText(a.Shape)}), but has {DeviceTensor.ShapeText(b.Shape)}.", nameof(b));
        int aBatch = a.Rank == 3 ? a.Shape[0] : 1, bBatch = b.Rank == 3 ? b.Shape[0] : 1;
        if (a.Rank == 3 && b.Rank == 3 && aBatch != bBatch)
            throw new ArgumentException(
                $"Argument 'b' must have batch {aBatch} like 'a' {DeviceTensor.ShapeText(a.Shape)}, but has {DeviceTensor.ShapeText(b.Shape)}.", nameof(b));
        int batch = Math.Max(aBatch, bBatch);
        bool batched = a.Rank == 3 || b.Rank == 3;
        Check.Shape(c, nameof(c), batched ? [batch, m, n] : [m, n], batched ? "(batch, M, N)" : "(M, N)");
        if (bias is not null)
            Check.Shape(bias, nameof(bias), [n], "(N)");
        Check.GridLimit(batch, "batch", "the batch count");
        // A and B may be 16-bit (one dtype for both): products accumulate in fp32 into an F32 C or one of their dtype.
        bool sixteenBit = a.DType != DType.F32 || b.DType != DType.F32;
        if (sixteenBit && a.DType != b.DType)
            throw new ArgumentException($"Arguments 'a' and 'b' must share a dtype, but 'a' is {a.DType} and 'b' is {b.DType}.", nameof(b));
        if (sixteenBit && c.DType != DType.F32 && c.DType != a.DType)
            throw new ArgumentException(
                $"Argument 'c' must be F32 or {a.DType} (the dtype of 'a' and 'b'), but is {c.DType}.", nameof(c));
        if (sixteenBit && algorithm != MatMulAlgorithm.Auto)
            throw new ArgumentException($"Argument 'algorithm' is {algorithm}, which applies to F32 operands; {a.DType} operands take Auto.", nameof(algorithm));
        Check.Implemented(device, OpFamily.MatMul, "MatMul.Multiply", a, nameof(a));
        Check.Implemented(device, OpFamily.MatMul, "MatMul.Multiply", b, nameof(b));
        if (!sixteenBit)
            Check.F32(device, "MatMul.Multiply", c, nameof(c));
        Check.F32(device, "MatMul.Multiply", bias, nameof(bias));

        var p = new MatMulProblem
        {
            Batch = batch, M = m, N = n, K = k,
            Lda = aCols, Ldb = bCols, Ldc = n,
            BatchStrideA = a.Rank == 3 ? (long)aRows * aCols : 0,
            BatchStrideB = b.Rank == 3 ? (long)bRows * bCols : 0,
            BatchStrideC = (long)m * n,
            TransA = transposeA ? 1 : 0, TransB = transposeB ? 1 : 0,
            Alpha = alpha, Beta = beta,
            HasBias = bias is null ? 0 : 1,
            Activation = (int)activation,
        };
        c.MarkWritten();
        if (sixteenBit)
            device.Backend.MatMulSixteenBit(p, a, b, c, bias);
        else
            device.Backend.MatMul(p, a, b, c, bias, algorithm);
    }
}
