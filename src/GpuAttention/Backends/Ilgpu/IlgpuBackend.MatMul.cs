using GpuAttention.Kernels;
using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAttention.Backends.Ilgpu;

internal sealed partial class IlgpuBackend
{
    /// <summary>Row count up to which <see cref="MatMulAlgorithm.Auto"/> picks the naive kernel.</summary>
    public const int SkinnyRows = 4;

    /// <summary>
    /// <see cref="MatMulKernels"/>: <see cref="MatMulAlgorithm.Auto"/> is the naive kernel when op(A) has at most
    /// <see cref="SkinnyRows"/> rows (a decoding step's projections: a tile of 4·TY rows would be almost empty and its
    /// barriers would dominate), the tiled one otherwise.
    /// </summary>
    public override void MatMul(MatMulProblem p, DeviceTensor a, DeviceTensor b, DeviceTensor c, DeviceTensor? bias, MatMulAlgorithm algorithm)
    {
        if (algorithm == MatMulAlgorithm.Auto)
            algorithm = p.M <= SkinnyRows ? MatMulAlgorithm.Naive : MatMulAlgorithm.Tiled;
        if (algorithm == MatMulAlgorithm.Naive)
        {
            Check.GridLimit(p.M, "a", "the row count M of the naive kernel");
            Kernels.MatMulNaive(new Index3D(p.N, p.M, p.Batch), Floats(a), Floats(b), Floats(c), FloatsOrEmpty(bias), p);
            return;
        }
        int groupX = profile.MatMulGroupX, groupY = profile.MatMulGroupY, tileK = profile.MatMulTileK;
        var (tileM, tileN) = MatMulTile(profile);
        Check.GridLimit((p.M + tileM - 1L) / tileM, "a", "the number of row tiles");
        var config = new KernelConfig(
            new Index3D((p.N + tileN - 1) / tileN, (p.M + tileM - 1) / tileM, p.Batch),
            new Index3D(groupX, groupY, 1),
            SharedMemoryConfig.RequestDynamic<float>(MatMulKernels.TiledSharedFloats(tileK, groupX, groupY)));
        Kernels.MatMulTiled(groupX, groupY, tileK)(config, Floats(a), Floats(b), Floats(c), FloatsOrEmpty(bias), p);
    }

    /// <summary>
    /// On CUDA the tensor-core GEMM (<see cref="HalfMatMulKernels"/>), A and B each stored transposed or not; every other
    /// ILGPU device (whose portable mma body exists for checking, not for speed) takes the widening path of the base class.
    /// </summary>
    public override void MatMulSixteenBit(MatMulProblem p, DeviceTensor a, DeviceTensor b, DeviceTensor c, DeviceTensor? bias)
    {
        if (Kind != DeviceKind.Cuda)
        {
            base.MatMulSixteenBit(p, a, b, c, bias);
            return;
        }
        Check.GridLimit((p.M + HalfMatMulKernels.BlockM - 1L) / HalfMatMulKernels.BlockM, "a", "the number of row blocks");
        var config = new KernelConfig(
            new Index3D((p.N + HalfMatMulKernels.BlockN - 1) / HalfMatMulKernels.BlockN, (p.M + HalfMatMulKernels.BlockM - 1) / HalfMatMulKernels.BlockM, p.Batch),
            new Index3D(HalfMatMulKernels.Threads, 1, 1),
            SharedMemoryConfig.RequestDynamic<byte>(HalfMatMulKernels.SharedBytes(onCuda: true)));
        bool sixteenBitOutput = c.DType != DType.F32;
        Kernels.TensorCoreMatMul(a.DType == DType.BF16, p.TransA != 0, p.TransB != 0, sixteenBitOutput).Launch(config, View<ushort>(a), View<ushort>(b),
            sixteenBitOutput ? default : Floats(c), sixteenBitOutput ? View<ushort>(c) : default, FloatsOrEmpty(bias), p);
    }

    /// <summary>Rows and columns of C one group of the tiled kernel computes.</summary>
    private static (int Rows, int Columns) MatMulTile(LaunchProfile profile) =>
        (MatMulKernels.RegisterBlock * profile.MatMulGroupY, MatMulKernels.RegisterBlock * profile.MatMulGroupX);
}
