using GpuAttention.Kernels;
using GpuAttention.Kernels.Cpu;
using GpuAttention.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAttention.Ops;

/// <summary>Which matmul kernel to launch.</summary>
public enum MatMulAlgorithm
{
    /// <summary>
    /// <see cref="Naive"/> when op(A) has at most <see cref="MatMul.SkinnyRows"/> rows (a decoding step's
    /// projections: a tile of 4·TY rows would be almost empty and its barriers would dominate),
    /// <see cref="Tiled"/> otherwise.
    /// </summary>
    Auto,
    /// <summary>Shared-memory tiles with a 4×4 register block per thread.</summary>
    Tiled,
    /// <summary>One thread per output element: the baseline the tiled kernel is measured against.</summary>
    Naive,
}

/// <summary>C = act(alpha·op(A)·op(B) + beta·C + bias), batched.</summary>
public static class MatMul
{
    /// <summary>Row count up to which <see cref="MatMulAlgorithm.Auto"/> picks the naive kernel (ILGPU devices).</summary>
    public const int SkinnyRows = 4;

    /// <summary>
    /// Multiplies row-major matrices. <paramref name="a"/> is [M, K] ([K, M] when <paramref name="transposeA"/>)
    /// or [batch, …]; <paramref name="b"/> is [K, N] ([N, K] when <paramref name="transposeB"/>, the layout of
    /// PyTorch's Linear weights) or [batch, …]; a rank-2 operand is shared by every batch entry. <paramref name="c"/>
    /// is [M, N], or [batch, M, N] when either operand is batched. When <paramref name="beta"/> is 0, C is not read.
    /// <paramref name="bias"/> ([N]) is added to every row before <paramref name="activation"/>.
    /// <paramref name="algorithm"/> picks among the ILGPU kernels; the managed CPU backend has one blocked algorithm
    /// and ignores it.
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

        var p = new MatMulParams
        {
            M = m, N = n, K = k,
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
        if (device.IsManaged)
        {
            Check.GridLimit(batch, "batch", "the batch count");
            MultiplyManaged(a, b, c, bias, p, batch, transposeB);
            return;
        }
        Launch(device, a.View, b.View, c.View, bias?.View ?? default, p, batch, algorithm);
    }

    /// <summary>
    /// The managed product. A rank-2 B multiplied the same way twice without being written in between (a weight) is
    /// packed once and kept with the tensor, as native runtimes pre-pack constant weights.
    /// </summary>
    private static unsafe void MultiplyManaged(DeviceTensor a, DeviceTensor b, DeviceTensor c, DeviceTensor? bias, MatMulParams p,
        int batch, bool transposeB)
    {
        float* packed = null;
        if (b.Rank == 2 && CpuMatMul.PacksB(p))
        {
            float* source = b.Pointer;
            var cached = b.PackedAsMatMulB(transposeB, CpuMatMul.PackedLength(p), destination => CpuMatMul.PackAll(source, p, destination));
            if (cached is not null)
                packed = cached.Buffer.Pointer;
        }
        CpuMatMul.Multiply(a.Pointer, b.Pointer, c.Pointer, bias is null ? null : bias.Pointer, p, batch, packed);
    }

    /// <summary>Launches without validation; callers guarantee the views match <paramref name="p"/>.</summary>
    internal static void Launch(ComputeDevice device, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c,
        ArrayView<float> bias, MatMulParams p, int batch, MatMulAlgorithm algorithm)
    {
        Check.GridLimit(batch, "batch", "the batch count");
        if (algorithm == MatMulAlgorithm.Auto)
            algorithm = p.M <= SkinnyRows ? MatMulAlgorithm.Naive : MatMulAlgorithm.Tiled;
        if (algorithm == MatMulAlgorithm.Naive)
        {
            Check.GridLimit(p.M, "a", "the row count M of the naive kernel");
            device.Kernels.MatMulNaive(new Index3D(p.N, p.M, batch), a, b, c, bias, p);
            return;
        }
        var profile = device.Profile!;
        int groupX = profile.MatMulGroupX, groupY = profile.MatMulGroupY, tileK = profile.MatMulTileK;
        int tileM = MatMulKernels.RegisterBlock * groupY, tileN = MatMulKernels.RegisterBlock * groupX;
        long gridY = (p.M + tileM - 1) / tileM;
        Check.GridLimit(gridY, "a", "the number of row tiles");
        var config = new KernelConfig(
            new Index3D((p.N + tileN - 1) / tileN, (int)gridY, batch),
            new Index3D(groupX, groupY, 1),
            SharedMemoryConfig.RequestDynamic<float>(tileK * (tileM + tileN)));
        device.Kernels.MatMulTiled(config, a, b, c, bias, p, tileK);
    }
}
