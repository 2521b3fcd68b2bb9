using GpuAttention.Kernels.Cpu;
using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Backends.Managed;

internal sealed unsafe partial class ManagedBackend
{
    /// <summary><see cref="CpuAttention"/>: flash-style, no Lq×Lk buffer; it tiles by its own constants.</summary>
    public override void Attention(AttentionProblem p, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor output,
        DeviceTensor? logSumExp, ResolvedMask mask) =>
        CpuAttention.FlashForward(Execution, Floats(q), Floats(k), Floats(v), Floats(output), FloatsOrNull(logSumExp), View(mask), p);
}
