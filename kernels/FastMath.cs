using ILGPU.Algorithms;
using ILGPU.Runtime.Cuda;

namespace GpuAttention.Kernels;

/// <summary>Fast math the tensor-core kernels use: one instruction on CUDA, ILGPU.Algorithms' XMath elsewhere.</summary>
public static class FastMath
{
    /// <summary>
    /// 2^x: <c>ex2.approx.ftz.f32</c> on CUDA (one MUFU.EX2: an approximation within a few ulp, whose bound the PTX ISA
    /// states; subnormal results flushed to zero; 2^−∞ = 0), <see cref="XMath.Exp2(float)"/> elsewhere (also 0 at −∞).
    /// </summary>
    public static float Exp2(float x)
    {
        if (!CudaAsm.IsSupported)
            return XMath.Exp2(x);
        CudaAsm.Emit("ex2.approx.ftz.f32 %0, %1;", out float result, x);
        return result;
    }
}
