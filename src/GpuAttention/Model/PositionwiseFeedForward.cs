using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>FFN(x) = act(x·W₁ᵀ + b₁)·W₂ᵀ + b₂, d_model → d_ff → d_model (PyTorch's linear1, linear2).</summary>
public sealed class PositionwiseFeedForward(Linear expand, Linear contract, Activation activation) : IDisposable
{
    /// <summary>Loads <c>{prefix}linear1</c> and <c>{prefix}linear2</c>.</summary>
    public static PositionwiseFeedForward Load(WeightSource weights, string prefix, TransformerConfig config) =>
        new(Linear.Load(weights, prefix + "linear1", config.DModel, config.DFeedForward),
            Linear.Load(weights, prefix + "linear2", config.DFeedForward, config.DModel),
            config.Activation == "gelu" ? Activation.Gelu : Activation.Relu);

    /// <summary>x [batch, length, d_model] → a new [batch, length, d_model].</summary>
    public DeviceTensor Forward(DeviceTensor x)
    {
        using var hidden = expand.Forward(x, activation);
        return contract.Forward(hidden);
    }

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        expand.Dispose();
        contract.Dispose();
    }
}
