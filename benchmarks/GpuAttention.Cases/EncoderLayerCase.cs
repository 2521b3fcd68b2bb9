using GpuAttention.Model;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;
using GpuAttention.Weights;

namespace GpuAttention.Cases;

/// <summary>
/// One post-LN ReLU encoder layer (PyTorch's TransformerEncoderLayer: self-attention, then the feed-forward network) over
/// [1, L, d] with random weights; FLOPs 2·L·d·4d (projections) + 4·L²·d (attention) + 4·L·d·ff (feed-forward). With a
/// 16-bit <paramref name="dtype"/> the layer runs in half precision (<see cref="WeightSource.LinearDType"/>).
/// </summary>
public sealed class EncoderLayerCase(int dModel, int heads, int dFeedForward, int length, DType dtype = DType.F32)
    : BenchCase("encoder layer", dtype == DType.F32 ? "post-LN relu" : $"{dtype.ToString().ToLowerInvariant()} post-LN relu",
        $"d{dModel} h{heads} ff{dFeedForward} L{length}", length, "L (tokens)",
        2.0 * length * dModel * 4 * dModel + 4.0 * length * length * dModel + 4.0 * length * dModel * dFeedForward, WorkUnit.Flops)
{
    private const float Epsilon = 1e-5f;

    /// <summary>
    /// PyTorch TransformerEncoderLayer parameter names with small random values (× 0.1, so that activations stay in the
    /// range a trained layer sees).
    /// </summary>
    public static Dictionary<string, HostTensor> RandomWeights(int dModel, int dFeedForward)
    {
        int seed = 10;
        HostTensor Random(params int[] shape) =>
            new(shape, RandomData.Uniform(shape.Aggregate(1, (a, b) => a * b), seed++).Select(v => v * 0.1f).ToArray());
        return new Dictionary<string, HostTensor>
        {
            ["self_attn.in_proj_weight"] = Random(3 * dModel, dModel),
            ["self_attn.in_proj_bias"] = Random(3 * dModel),
            ["self_attn.out_proj.weight"] = Random(dModel, dModel),
            ["self_attn.out_proj.bias"] = Random(dModel),
            ["linear1.weight"] = Random(dFeedForward, dModel),
            ["linear1.bias"] = Random(dFeedForward),
            ["linear2.weight"] = Random(dModel, dFeedForward),
            ["linear2.bias"] = Random(dModel),
            ["norm1.weight"] = Random(dModel),
            ["norm1.bias"] = Random(dModel),
            ["norm2.weight"] = Random(dModel),
            ["norm2.bias"] = Random(dModel),
        };
    }

    /// <summary>13 tokens through a layer of the benchmarked width, against the double-precision composition.</summary>
    public override double Check(ComputeDevice device)
    {
        const int tokens = 13;
        var weights = RandomWeights(dModel, dFeedForward);
        var x = RandomData.Uniform(tokens * dModel, 4);
        using var layer = Load(device, weights);
        using var tx = device.Upload(x, 1, tokens, dModel);
        using var y = layer.Forward(tx, AttentionMask.None);
        var want = ReferenceOps.EncoderLayer(x, weights.ToDictionary(w => w.Key, w => w.Value.Data), tokens, dModel, heads, dFeedForward, Epsilon);
        return RelativeError(y.ToArray(), want);
    }

    public override PreparedCase Prepare(ComputeDevice device)
    {
        var weights = RandomWeights(dModel, dFeedForward);
        var layer = Load(device, weights);
        var x = device.Upload(RandomData.Uniform(length * dModel, 1), 1, length, dModel);
        DeviceTensor? output = null;
        var prepared = new PreparedCase(device,
            () =>
            {
                output?.Dispose();
                output = layer.Forward(x, AttentionMask.None);
            },
            () => new Dictionary<string, HostTensor>(weights)
            {
                ["x"] = PreparedCase.Host(x),
                ["output"] = PreparedCase.Host(output ?? throw new InvalidOperationException("Run the case before downloading its output.")),
            },
            layer, x, new Disposer(() => output?.Dispose()));
        return prepared;
    }

    /// <inheritdoc />
    public override object Problem => new
    {
        op = "encoderLayer", batch = 1, dModel, heads, dFeedForward, length, normFirst = false, activation = "relu", layerNormEpsilon = Epsilon,
        dtype = dtype.ToString().ToLowerInvariant(),
    };

    private EncoderLayer Load(ComputeDevice device, Dictionary<string, HostTensor> weights) =>
        EncoderLayer.Load(new WeightSource(device, weights, "random") { LinearDType = dtype }, "",
            new TransformerConfig { DModel = dModel, Heads = heads, DFeedForward = dFeedForward, SourceVocabulary = 1, TargetVocabulary = 3, LayerNormEpsilon = Epsilon });

    private sealed class Disposer(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}
