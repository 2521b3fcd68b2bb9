using GpuAttention.Kernels.Cpu;
using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Backends.Managed;

internal sealed unsafe partial class ManagedBackend
{
    /// <summary>
    /// <see cref="CpuMatMul"/>. A rank-2 B multiplied the same way twice without being written in between (a weight) is
    /// packed once and kept with the tensor, as native runtimes pre-pack constant weights.
    /// </summary>
    public override void MatMul(MatMulProblem p, DeviceTensor a, DeviceTensor b, DeviceTensor c, DeviceTensor? bias, MatMulAlgorithm algorithm)
    {
        float* packed = null;
        if (b.Rank == 2 && CpuMatMul.PacksB(p))
        {
            float* source = Floats(b);
            packed = Storage(b).PackedAsMatMulB(p.TransB != 0, CpuMatMul.PackedLength(p),
                destination => CpuMatMul.PackAll(Execution, source, p, (float*)destination));
        }
        CpuMatMul.Multiply(Execution, Floats(a), Floats(b), Floats(c), FloatsOrNull(bias), p, packed);
    }
}
