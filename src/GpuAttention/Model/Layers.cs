using GpuAttention.Kernels;
using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>y = act(x·Wᵀ + b) with W of PyTorch's [out, in] layout; the bias and activation are the matmul's epilogue.</summary>
public sealed class Linear : IDisposable
{
    private readonly DeviceTensor weight;
    private readonly DeviceTensor bias;

    public Linear(DeviceTensor weight, DeviceTensor bias)
    {
        this.weight = weight;
        this.bias = bias;
        OutFeatures = weight.Shape[0];
    }

    /// <summary>Loads <c>{name}.weight</c> [out, in] and <c>{name}.bias</c> [out].</summary>
    public static Linear Load(WeightSource weights, string name, int inFeatures, int outFeatures) =>
        new(weights.Load(name + ".weight", outFeatures, inFeatures), weights.Load(name + ".bias", outFeatures));

    public int OutFeatures { get; }

    /// <summary>x [batch, length, in] → a new [batch, length, out].</summary>
    public DeviceTensor Forward(DeviceTensor x, Activation activation = Activation.None)
    {
        var y = x.Device.Allocate(x.Shape[0], x.Shape[1], OutFeatures);
        MatMul.Multiply(x, weight, y, transposeB: true, bias: bias, activation: activation);
        return y;
    }

    public void Dispose()
    {
        weight.Dispose();
        bias.Dispose();
    }
}

/// <summary>LayerNorm with gain and bias over d_model, optionally fused with the residual add.</summary>
public sealed class LayerNormalization(DeviceTensor gain, DeviceTensor bias, float epsilon) : IDisposable
{
    /// <summary>Loads <c>{name}.weight</c> and <c>{name}.bias</c>.</summary>
    public static LayerNormalization Load(WeightSource weights, string name, int width, float epsilon) =>
        new(weights.Load(name + ".weight", width), weights.Load(name + ".bias", width), epsilon);

    /// <summary>A new LayerNorm(x + residual).</summary>
    public DeviceTensor Forward(DeviceTensor x, DeviceTensor? residual = null)
    {
        var y = x.Device.Allocate([.. x.Shape]);
        LayerNorm.Apply(x, gain, bias, y, epsilon, residual);
        return y;
    }

    public void Dispose()
    {
        gain.Dispose();
        bias.Dispose();
    }
}

/// <summary>Token embedding scaled by √d_model plus the positional encoding (sinusoidal, or learned positions).</summary>
public sealed class Embeddings : IDisposable
{
    private readonly DeviceTensor table;
    private readonly DeviceTensor? learnedPositions;
    private readonly int width;

    public Embeddings(WeightSource weights, string name, string positionsName, int vocabulary, int width, int maxLength, bool learned)
    {
        this.width = width;
        table = weights.Load(name + ".weight", vocabulary, width);
        learnedPositions = learned ? weights.Load(positionsName + ".weight", maxLength, width) : null;
    }

    /// <summary>tokens [batch][length] at positions firstPosition… → a new [batch, length, d_model].</summary>
    public DeviceTensor Forward(int[][] tokens, int firstPosition = 0)
    {
        int batch = tokens.Length, length = tokens[0].Length;
        var flat = tokens.SelectMany(row => row).ToArray();
        var device = table.Device;
        var x = device.Allocate(batch, length, width);
        Elementwise.EmbeddingGather(flat, table, x, MathF.Sqrt(width));
        if (learnedPositions is null)
        {
            Elementwise.AddPositionalEncoding(x, x, firstPosition);
            return x;
        }
        var positions = Enumerable.Range(0, batch).SelectMany(_ => Enumerable.Range(firstPosition, length)).ToArray();
        using var pe = device.Allocate(batch, length, width);
        Elementwise.EmbeddingGather(positions, learnedPositions, pe);
        Elementwise.Add(x, pe, x);
        return x;
    }

    public void Dispose()
    {
        table.Dispose();
        learnedPositions?.Dispose();
    }
}

/// <summary>FFN(x) = act(x·W₁ᵀ + b₁)·W₂ᵀ + b₂, d_model → d_ff → d_model (PyTorch's linear1, linear2).</summary>
public sealed class PositionwiseFeedForward(Linear expand, Linear contract, Activation activation) : IDisposable
{
    public static PositionwiseFeedForward Load(WeightSource weights, string prefix, TransformerConfig config) =>
        new(Linear.Load(weights, prefix + "linear1", config.DModel, config.DFeedForward),
            Linear.Load(weights, prefix + "linear2", config.DFeedForward, config.DModel),
            config.Activation == "gelu" ? Activation.Gelu : Activation.Relu);

    public DeviceTensor Forward(DeviceTensor x)
    {
        using var hidden = expand.Forward(x, activation);
        return contract.Forward(hidden);
    }

    public void Dispose()
    {
        expand.Dispose();
        contract.Dispose();
    }
}
