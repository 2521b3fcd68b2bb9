using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>
/// y = act(x·Wᵀ + b) with W of PyTorch's [out, in] layout; the bias and activation are the matmul's epilogue. A 16-bit W
/// (BF16 or F16, <see cref="WeightSource.LinearDType"/>) multiplies x rounded to its dtype, accumulating in fp32 into an F32
/// y: the tensor-core GEMM on CUDA.
/// </summary>
public sealed class Linear(DeviceTensor weight, DeviceTensor bias) : IDisposable
{
    /// <summary>Loads <c>{name}.weight</c> [out, in] and <c>{name}.bias</c> [out].</summary>
    public static Linear Load(WeightSource weights, string name, int inFeatures, int outFeatures) =>
        new(weights.LoadLinearWeight(name + ".weight", outFeatures, inFeatures), weights.Load(name + ".bias", outFeatures));

    /// <summary>Output features.</summary>
    public int OutFeatures { get; } = weight.Shape[0];

    /// <summary>The weight's dtype: F32, or the 16-bit format inputs are rounded to.</summary>
    public DType WeightDType => weight.DType;

    /// <summary>x [batch, length, in] → a new [batch, length, out].</summary>
    public DeviceTensor Forward(DeviceTensor x, Activation activation = Activation.None)
    {
        var y = x.Device.Allocate(x.Shape[0], x.Shape[1], OutFeatures);
        if (weight.DType == DType.F32)
        {
            MatMul.Multiply(x, weight, y, transposeB: true, bias: bias, activation: activation);
            return y;
        }
        using var narrow = x.Device.Allocate(weight.DType, [.. x.Shape]);
        Elementwise.Convert(x, narrow);
        MatMul.Multiply(narrow, weight, y, transposeB: true, bias: bias, activation: activation);
        return y;
    }

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        weight.Dispose();
        bias.Dispose();
    }
}
