using ILGPU.Algorithms;
using ILGPU.Runtime.Cuda;

namespace GpuAttention.Kernels;

/// <summary>Fast math the tensor-core kernels use, one instruction on CUDA and an exact body elsewhere.</summary>
public static class FastMath
{
    /// <summary>
    /// 2^x: <c>ex2.approx.ftz.f32</c> on CUDA (one MUFU.EX2; maximum relative error 2⁻²² over its range per the PTX ISA,
    /// subnormal results flushed to zero, 2^−∞ = 0), <see cref="XMath.Exp2(float)"/> elsewhere, where −∞ is answered
    /// here: XMath's managed body, which the CPU accelerator runs, gives NaN for it.
    /// </summary>
    public static float Exp2(float x)
    {
        if (!CudaAsm.IsSupported)
            return x == float.NegativeInfinity ? 0f : XMath.Exp2(x);
        CudaAsm.Emit("ex2.approx.ftz.f32 %0, %1;", out float result, x);
        return result;
    }
}
