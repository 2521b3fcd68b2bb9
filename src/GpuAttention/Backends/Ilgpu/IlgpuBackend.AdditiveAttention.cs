using GpuAttention.Kernels;
using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;
using ILGPU;

namespace GpuAttention.Backends.Ilgpu;

internal sealed partial class IlgpuBackend
{
    /// <summary><see cref="AttentionKernels.FlashForward"/> with <see cref="AdditiveScore"/>, launched as <see cref="Attention"/>.</summary>
    public override void AdditiveAttention(AttentionProblem p, DeviceTensor projectedQ, DeviceTensor projectedK, DeviceTensor v,
        DeviceTensor scoreVector, DeviceTensor output, DeviceTensor? logSumExp, ResolvedMask mask) =>
        LaunchFlashForward(p, additive: true, projectedQ, projectedK, v, Floats(scoreVector), output, logSumExp, mask);

    /// <summary><see cref="AttentionKernels.AdditiveScores"/>, one thread per score.</summary>
    public override void AdditiveScores(AttentionProblem p, DeviceTensor projectedQ, DeviceTensor projectedK, DeviceTensor scoreVector,
        DeviceTensor scores) =>
        Kernels.AdditiveScores(new Index2D(p.Lk, p.BatchHeads * p.Lq), Floats(projectedQ), Floats(projectedK), Floats(scoreVector),
            Floats(scores), p.Lq, p.Lk, p.HeadDim);
}
