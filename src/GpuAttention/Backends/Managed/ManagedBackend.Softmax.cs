using GpuAttention.Kernels.Cpu;
using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Backends.Managed;

internal sealed unsafe partial class ManagedBackend
{
    /// <summary><see cref="CpuSoftmax"/>.</summary>
    public override void Softmax(SoftmaxProblem p, DeviceTensor x, DeviceTensor y, ResolvedMask mask) =>
        CpuSoftmax.MaskedSoftmax(Execution, Floats(x), Floats(y), View(mask), p);

    /// <summary>The mask as the managed kernels read it.</summary>
    private static HostMask View(ResolvedMask mask) => new()
    {
        Rules = mask.Rules,
        ValidLengths = mask.ValidLengths,
        Additive = FloatsOrNull(mask.Additive),
    };
}
