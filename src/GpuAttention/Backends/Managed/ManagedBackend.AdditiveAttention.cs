using GpuAttention.Kernels.Cpu;
using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Backends.Managed;

internal sealed unsafe partial class ManagedBackend
{
    /// <summary><see cref="CpuAdditiveAttention"/>: a row at a time over streamed key tiles, no Lq×Lk buffer.</summary>
    public override void AdditiveAttention(AttentionProblem p, DeviceTensor projectedQ, DeviceTensor projectedK, DeviceTensor v,
        DeviceTensor scoreVector, DeviceTensor output, DeviceTensor? logSumExp, ResolvedMask mask) =>
        CpuAdditiveAttention.FlashForward(Execution, Floats(projectedQ), Floats(projectedK), Floats(v), Floats(scoreVector),
            Floats(output), FloatsOrNull(logSumExp), View(mask), p);

    /// <summary><see cref="CpuAdditiveAttention.Scores"/>: the unfused baseline's score matrix.</summary>
    public override void AdditiveScores(AttentionProblem p, DeviceTensor projectedQ, DeviceTensor projectedK, DeviceTensor scoreVector,
        DeviceTensor scores) =>
        CpuAdditiveAttention.Scores(Execution, Floats(projectedQ), Floats(projectedK), Floats(scoreVector), Floats(scores), p);
}
