using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime.Cuda;

namespace GpuAttention.Kernels;

/// <summary>How <see cref="WarpQuad"/> folds two values, as compile-time behaviour.</summary>
public interface IQuadFold
{
    /// <summary>The fold of <paramref name="a"/> and <paramref name="b"/>.</summary>
    float Fold(float a, float b);
}

/// <summary>The larger of two values (a NaN gives way to the other, as <c>fmax</c>).</summary>
public readonly struct MaxFold : IQuadFold
{
    /// <inheritdoc />
    public float Fold(float a, float b) => XMath.Max(a, b);
}

/// <summary>The sum of two values.</summary>
public readonly struct SumFold : IQuadFold
{
    /// <inheritdoc />
    public float Fold(float a, float b) => a + b;
}

/// <summary>
/// Folds across the four lanes of a quad (lanes 4g … 4g + 3), which between them hold a row of an mma accumulator
/// (<see cref="MmaLayout.CRow"/>): two butterfly shuffles (<c>shfl.sync.bfly</c>) on CUDA; elsewhere a portable body in
/// which 32 consecutive threads of the group act as the warp and exchange the values through
/// <see cref="ScratchFloatsPerWarp"/> shared floats per warp. Its group barriers mean every thread of the group calls it
/// together. Each call folds two values, the lane's two accumulator rows (g and g + 8), so one exchange serves both.
/// </summary>
public static class WarpQuad
{
    /// <summary>Shared floats per warp the portable body needs (two values per lane, then a slot per lane that pins its reads); none on CUDA.</summary>
    public const int ScratchFloatsPerWarp = 3 * MmaLayout.WarpSize;

    /// <summary>Both values folded over the lane's quad; every lane of the quad receives the same pair.</summary>
    public static (float Low, float High) Fold<TFold>(float low, float high, ArrayView<float> scratch) where TFold : struct, IQuadFold
    {
        var fold = default(TFold);
        if (CudaAsm.IsSupported)
        {
            low = fold.Fold(low, ShuffleXor1(low));
            high = fold.Fold(high, ShuffleXor1(high));
            low = fold.Fold(low, ShuffleXor2(low));
            high = fold.Fold(high, ShuffleXor2(high));
            return (low, high);
        }
        int lane = Group.IdxX & (MmaLayout.WarpSize - 1), quad = lane & ~3;
        var values = scratch.SubView((Group.IdxX / MmaLayout.WarpSize) * ScratchFloatsPerWarp, ScratchFloatsPerWarp);
        values[lane] = low;
        values[MmaLayout.WarpSize + lane] = high;
        Group.Barrier();
        float foldedLow = fold.Fold(fold.Fold(values[quad], values[quad + 1]), fold.Fold(values[quad + 2], values[quad + 3]));
        int highAt = MmaLayout.WarpSize + quad;
        float foldedHigh = fold.Fold(fold.Fold(values[highAt], values[highAt + 1]), fold.Fold(values[highAt + 2], values[highAt + 3]));
        // As in WarpMatrix: a store that needs the loaded values keeps ILGPU's O2 code placement from sinking the reads past
        // the next barrier, where another lane's next call may already be overwriting them.
        values[2 * MmaLayout.WarpSize + lane] = foldedLow + foldedHigh;
        Group.Barrier();
        return (foldedLow, foldedHigh);
    }

    // The membermask is every lane and the clamp 31 (the whole warp is one segment); inline PTX needs each as a literal.
    private static float ShuffleXor1(float value)
    {
        CudaAsm.Emit("shfl.sync.bfly.b32 %0, %1, 1, 31, -1;", out float result, value);
        return result;
    }

    private static float ShuffleXor2(float value)
    {
        CudaAsm.Emit("shfl.sync.bfly.b32 %0, %1, 2, 31, -1;", out float result, value);
        return result;
    }
}
