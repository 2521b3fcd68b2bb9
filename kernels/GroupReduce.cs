using ILGPU;
using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>
/// Group-wide all-reductions through shared memory: every thread publishes its value, then every thread
/// folds all of them in the same order, so all threads get bit-identical results (safe to branch on) for
/// two barriers. Written here rather than taken from ILGPU.Algorithms because its group reductions spin
/// forever on the CPU accelerator when a value is NaN (its atomic compare-exchange loop compares floats)
/// and rely on warp shuffles that ILGPU's OpenCL backend cannot always compile. The reads are broadcasts
/// (all threads read one address at a time), so on a GPU the fold costs a few hundred cycles per row —
/// small next to the row's global-memory traffic in the memory-bound kernels that use it.
/// </summary>
public static class GroupReduce
{
    /// <summary>Sum over the group; <paramref name="scratch"/> holds at least Group.DimX floats of shared memory.</summary>
    public static float Sum(float value, ArrayView<float> scratch)
    {
        scratch[Group.IdxX] = value;
        Group.Barrier();
        float total = 0f;
        for (int i = 0; i < Group.DimX; i++)
            total += scratch[i];
        Group.Barrier();
        return total;
    }

    /// <summary>Maximum over the group, NaN if any value is NaN.</summary>
    public static float Max(float value, ArrayView<float> scratch)
    {
        scratch[Group.IdxX] = value;
        Group.Barrier();
        float max = float.NegativeInfinity;
        for (int i = 0; i < Group.DimX; i++)
            max = MaxPropagatingNaN(max, scratch[i]);
        Group.Barrier();
        return max;
    }

    /// <summary>max(a, b) that returns NaN when either is NaN (IEEE maxNum would drop it).</summary>
    public static float MaxPropagatingNaN(float a, float b) => XMath.IsNaN(a) ? a : b > a || XMath.IsNaN(b) ? b : a;
}
