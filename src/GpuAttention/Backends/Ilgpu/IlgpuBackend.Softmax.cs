using GpuAttention.Kernels;
using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAttention.Backends.Ilgpu;

internal sealed partial class IlgpuBackend
{
    /// <summary>
    /// <see cref="SoftmaxKernels.MaskedSoftmax"/>, one group of <see cref="LaunchProfile.RowGroupSize"/> threads per row;
    /// the row is kept in shared memory (one global read) when it fits beside the reduction scratch.
    /// </summary>
    public override void Softmax(SoftmaxProblem p, DeviceTensor x, DeviceTensor y, ResolvedMask mask)
    {
        using var lengths = ValidLengths(mask);
        int groupSize = profile.RowGroupSize;
        bool cacheRow = ((long)p.Lk + groupSize) * sizeof(float) <= profile.SharedMemoryBytes;
        var config = new KernelConfig(checked((int)p.Rows), groupSize,
            SharedMemoryConfig.RequestDynamic<float>(groupSize + (cacheRow ? p.Lk : 1)));
        Kernels.MaskedSoftmax(config, Floats(x), Floats(y), View(mask, lengths), p, cacheRow ? 1 : 0);
    }

    /// <summary>The valid lengths in device memory for the launch, or null without them.</summary>
    private Temporary<int>? ValidLengths(ResolvedMask mask) => mask.ValidLengths is { } lengths ? Upload<int>(lengths) : null;

    /// <summary>The mask as the kernels read it.</summary>
    private static MaskViews View(ResolvedMask mask, Temporary<int>? lengths) => new()
    {
        Rules = mask.Rules,
        ValidLengths = lengths?.View ?? default,
        Additive = FloatsOrEmpty(mask.Additive),
    };
}
