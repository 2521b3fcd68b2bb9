using GpuAttention.Kernels;
using GpuAttention.Problems;
using GpuAttention.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAttention.Backends.Ilgpu;

internal sealed partial class IlgpuBackend
{
    /// <summary>
    /// <see cref="LayerNormKernels.LayerNorm"/>, one group of <see cref="LaunchProfile.RowGroupSize"/> threads per row;
    /// the row is kept in shared memory (one global read) when it fits beside the reduction scratch.
    /// </summary>
    public override void LayerNorm(LayerNormProblem p, DeviceTensor x, DeviceTensor? residual, DeviceTensor gain, DeviceTensor bias,
        DeviceTensor y)
    {
        int groupSize = profile.RowGroupSize;
        bool cacheRow = ((long)p.Width + groupSize) * sizeof(float) <= profile.SharedMemoryBytes;
        var config = new KernelConfig(p.Rows, groupSize, SharedMemoryConfig.RequestDynamic<float>(groupSize + (cacheRow ? p.Width : 1)));
        Kernels.LayerNorm(config, Floats(x), FloatsOrEmpty(residual), Floats(gain), Floats(bias), Floats(y), p, cacheRow ? 1 : 0);
    }

    /// <summary>
    /// <see cref="LayerNormKernels.EmbeddingLayerNorm"/>, one group of <see cref="LaunchProfile.RowGroupSize"/> threads per
    /// row, the summed row in shared memory.
    /// </summary>
    public override void EmbeddingLayerNorm(ReadOnlySpan<int> ids, DeviceTensor words, DeviceTensor positions, DeviceTensor types,
        DeviceTensor gain, DeviceTensor bias, DeviceTensor y, int width, float epsilon)
    {
        int groupSize = profile.RowGroupSize;
        long sharedFloats = (long)width + groupSize;
        if (sharedFloats * sizeof(float) > profile.SharedMemoryBytes)
            throw new NotSupportedException(
                $"LayerNorm.EmbeddingSum keeps a row in shared memory: a width of {width} needs {sharedFloats * sizeof(float)} bytes, " +
                $"more than the {profile.SharedMemoryBytes} {Name} gives a group.");
        using var indices = Upload(ids);
        Kernels.EmbeddingLayerNorm(new KernelConfig(ids.Length / 3, groupSize, SharedMemoryConfig.RequestDynamic<float>((int)sharedFloats)),
            indices.View, Floats(words), Floats(positions), Floats(types), Floats(gain), Floats(bias), Floats(y), ids.Length / 3, width, epsilon);
    }

    /// <summary><see cref="LayerNormKernels.L2Normalize"/>, one group of <see cref="LaunchProfile.RowGroupSize"/> threads per row.</summary>
    public override void L2Normalize(DeviceTensor x, DeviceTensor y, int rows, int width, float epsilon)
    {
        int groupSize = profile.RowGroupSize;
        Kernels.L2Normalize(new KernelConfig(rows, groupSize, SharedMemoryConfig.RequestDynamic<float>(groupSize)), Floats(x), Floats(y), width, epsilon);
    }
}
