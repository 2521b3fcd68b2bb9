using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// What the managed CPU kernels run on: 256-bit vectors with FMA where the CPU has them (x86 AVX2+FMA), else
/// plain scalar loops with the same results up to rounding. Read once; the JIT folds the checks away.
/// </summary>
public static class CpuFeatures
{
    /// <summary>True when the kernels take their Vector256 paths.</summary>
    public static bool Vector256Paths { get; } = Vector256.IsHardwareAccelerated;

    /// <summary>True when Vector256 multiply-adds are fused instructions.</summary>
    public static bool FusedMultiplyAdd => Fma.IsSupported;

    /// <summary>Floats per vector the kernels use (8 with Vector256, 1 scalar).</summary>
    public static int VectorFloats => Vector256Paths ? Vector256<float>.Count : 1;

    /// <summary>The instruction set in words, e.g. <c>AVX2+FMA</c>.</summary>
    public static string Description =>
        !Vector256Paths ? "scalar"
        : Avx2.IsSupported ? (Fma.IsSupported ? "AVX2+FMA" : "AVX2")
        : "Vector256";
}
