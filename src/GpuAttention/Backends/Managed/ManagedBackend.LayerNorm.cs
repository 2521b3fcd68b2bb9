using GpuAttention.Kernels.Cpu;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Backends.Managed;

internal sealed unsafe partial class ManagedBackend
{
    /// <summary><see cref="CpuLayerNorm"/>.</summary>
    public override void LayerNorm(LayerNormProblem p, DeviceTensor x, DeviceTensor? residual, DeviceTensor gain, DeviceTensor bias,
        DeviceTensor y) =>
        CpuLayerNorm.LayerNorm(Execution, Floats(x), FloatsOrNull(residual), Floats(gain), Floats(bias), Floats(y), p);

    /// <summary><see cref="CpuLayerNorm.EmbeddingLayerNorm"/>.</summary>
    public override void EmbeddingLayerNorm(ReadOnlySpan<int> ids, DeviceTensor words, DeviceTensor positions, DeviceTensor types,
        DeviceTensor gain, DeviceTensor bias, DeviceTensor y, int width, float epsilon) =>
        CpuLayerNorm.EmbeddingLayerNorm(Execution, ids.ToArray(), Floats(words), Floats(positions), Floats(types), Floats(gain), Floats(bias),
            Floats(y), width, epsilon);

    /// <summary><see cref="CpuLayerNorm.L2Normalize"/>.</summary>
    public override void L2Normalize(DeviceTensor x, DeviceTensor y, int rows, int width, float epsilon) =>
        CpuLayerNorm.L2Normalize(Execution, Floats(x), Floats(y), rows, width, epsilon);
}
