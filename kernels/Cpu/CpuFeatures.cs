using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// What the managed CPU kernels run on: the matmul micro-kernel on 512-bit vectors where the CPU runs them at full
/// speed (AVX-512; .NET reports Vector512 unaccelerated where it would throttle), everything else on 256-bit
/// vectors with FMA (AVX2+FMA), else plain scalar loops with the same results up to rounding.
/// </summary>
public static class CpuFeatures
{
    /// <summary>True when the kernels take their Vector256 paths.</summary>
    public static bool Vector256Paths { get; } = Vector256.IsHardwareAccelerated;

    /// <summary>True when the micro-kernel takes its Vector512 path.</summary>
    public static bool Vector512Paths { get; } = Vector512.IsHardwareAccelerated && Vector256.IsHardwareAccelerated;

    /// <summary>Floats per vector of the matmul micro-kernel (16 with Vector512, 8 with Vector256, 1 scalar).</summary>
    public static int VectorFloats => Vector512Paths ? Vector512<float>.Count : Vector256Paths ? Vector256<float>.Count : 1;

    /// <summary>The instruction set in words, e.g. <c>AVX-512</c> or <c>AVX2+FMA</c>.</summary>
    public static string Description =>
        Vector512Paths ? (Avx512F.IsSupported ? "AVX-512" : "Vector512")
        : !Vector256Paths ? "scalar"
        : Avx2.IsSupported ? (Fma.IsSupported ? "AVX2+FMA" : "AVX2")
        : "Vector256";
}
