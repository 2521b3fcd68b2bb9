using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>y = act(x·Wᵀ + b) with W of PyTorch's [out, in] layout; the bias and activation are the matmul's epilogue.</summary>
public sealed class Linear(DeviceTensor weight, DeviceTensor bias) : IDisposable
{
    /// <summary>Loads <c>{name}.weight</c> [out, in] and <c>{name}.bias</c> [out].</summary>
    public static Linear Load(WeightSource weights, string name, int inFeatures, int outFeatures) =>
        new(weights.Load(name + ".weight", outFeatures, inFeatures), weights.Load(name + ".bias", outFeatures));

    /// <summary>Output features.</summary>
    public int OutFeatures { get; } = weight.Shape[0];

    /// <summary>x [batch, length, in] → a new [batch, length, out].</summary>
    public DeviceTensor Forward(DeviceTensor x, Activation activation = Activation.None)
    {
        var y = x.Device.Allocate(x.Shape[0], x.Shape[1], OutFeatures);
        MatMul.Multiply(x, weight, y, transposeB: true, bias: bias, activation: activation);
        return y;
    }

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        weight.Dispose();
        bias.Dispose();
    }
}
