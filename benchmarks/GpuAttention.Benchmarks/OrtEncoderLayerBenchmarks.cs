using BenchmarkDotNet.Attributes;
using GpuAttention.Cases;
using GpuAttention.Model;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Benchmarks;

/// <summary>One post-LN, ReLU encoder layer (the paper's base sizes at 256 tokens), the same random weights for both.</summary>
public class OrtEncoderLayerBenchmarks : OrtComparison
{
    private EncoderLayer encoderLayer = null!;
    private DeviceTensor x = null!;

    public static IEnumerable<OrtWorkload> Workloads => [Small ? OrtWorkload.EncoderLayer(64, 4, 256, 32) : OrtWorkload.EncoderLayer(512, 8, 2048, 256)];

    [ParamsSource(nameof(Workloads))]
    public OrtWorkload Workload { get; set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        var (d, heads, ff, length) = (Workload.DModel, Workload.Heads, Workload.DFeedForward, Workload.Size);
        var tensors = EncoderLayerCase.RandomWeights(d, ff);
        var config = new TransformerConfig { DModel = d, Heads = heads, DFeedForward = ff, SourceVocabulary = 1, TargetVocabulary = 3 };
        encoderLayer = Own(EncoderLayer.Load(new WeightSource(Device, tensors, "random"), "", config));
        float[] hx = RandomData.Uniform(length * d, 1), hy = new float[length * d];
        x = Own(Device.Upload(hx, 1, length, d));

        string set = $"encoder_layer_d{d}_h{heads}_ff{ff}";
        Binding = Bind(OpenSession(WriteWeights(set, [set + ".onnx"], name => tensors[name].Data)[0]),
            [("x", Tensor(hx, 1, length, d))], [("y", Tensor(hy, 1, length, d))]);
        OnnxRuntime();
        using var ours = encoderLayer.Forward(x, AttentionMask.None);
        Verify.Close(ours.ToArray(), hy, $"Our {Workload} vs ONNX Runtime");
    }

    [Benchmark]
    public int Ours()
    {
        using (encoderLayer.Forward(x, AttentionMask.None))
            Device.Synchronize();
        return 0;
    }
}
