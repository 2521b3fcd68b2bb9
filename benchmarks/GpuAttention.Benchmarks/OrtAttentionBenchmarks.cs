using BenchmarkDotNet.Attributes;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Benchmarks;

/// <summary>
/// O = softmax(Q·Kᵀ/√d [+ causal])·V, B = 1, H = 8, d = 64. ORT's <c>com.microsoft.MultiHeadAttention</c>: the fastest ORT
/// CPU attention we measured, with an MLAS flash-attention path when unmasked; causal is its <c>unidirectional = 1</c>,
/// which ORT runs unfused (GEMM, masked softmax, GEMM over all L² scores). Its operands are [B, L, H·d] (heads interleaved
/// per token), so the setup hands ORT our [B, H, L, d] data transposed to that layout; the transposition is not timed.
/// </summary>
public class OrtAttentionBenchmarks : OrtComparison
{
    private DeviceTensor q = null!, k = null!, v = null!, o = null!;
    private AttentionMask mask = AttentionMask.None;

    public static IEnumerable<OrtWorkload> Workloads =>
        from length in Small ? [64] : new[] { 256, 1024, 4096 }
        from causal in new[] { false, true }
        select OrtWorkload.Attention(length, causal);

    [ParamsSource(nameof(Workloads))]
    public OrtWorkload Workload { get; set; } = null!;

    [GlobalSetup]
    public void Setup()
    {
        const int heads = OrtWorkload.AttentionHeads, headDim = OrtWorkload.AttentionHeadDim;
        int length = Workload.Size, count = heads * length * headDim;
        float[] hq = RandomData.Uniform(count, 1), hk = RandomData.Uniform(count, 2), hv = RandomData.Uniform(count, 3);
        mask = Workload.Causal ? AttentionMask.Causal : AttentionMask.None;
        q = Own(Device.Upload(hq, 1, heads, length, headDim));
        k = Own(Device.Upload(hk, 1, heads, length, headDim));
        v = Own(Device.Upload(hv, 1, heads, length, headDim));
        o = Own(Device.Allocate(1, heads, length, headDim));

        long[] shape = [1, length, heads * headDim];
        var ortOutput = new float[count];
        Binding = Bind(OpenSession(Workload.Causal ? "attention_causal.onnx" : "attention.onnx"),
            [("query", Tensor(TokenMajor(hq, heads, length, headDim), shape)),
             ("key", Tensor(TokenMajor(hk, heads, length, headDim), shape)),
             ("value", Tensor(TokenMajor(hv, heads, length, headDim), shape))],
            [("output", Tensor(ortOutput, shape))]);
        OnnxRuntime();
        Ours();
        Verify.Close(o.ToArray(), HeadMajor(ortOutput, heads, length, headDim), $"Our fused attention {Workload} vs ONNX Runtime");
    }

    [Benchmark]
    public int Ours()
    {
        Attention.Fused(q, k, v, o, mask);
        Device.Synchronize();
        return 0;
    }

    /// <summary>[H, L, d] → [L, H·d].</summary>
    private static float[] TokenMajor(float[] x, int heads, int length, int headDim)
    {
        var y = new float[x.Length];
        for (int h = 0; h < heads; h++)
            for (int l = 0; l < length; l++)
                Array.Copy(x, (h * length + l) * headDim, y, (l * heads + h) * headDim, headDim);
        return y;
    }

    /// <summary>[L, H·d] → [H, L, d].</summary>
    private static float[] HeadMajor(float[] x, int heads, int length, int headDim)
    {
        var y = new float[x.Length];
        for (int h = 0; h < heads; h++)
            for (int l = 0; l < length; l++)
                Array.Copy(x, (l * heads + h) * headDim, y, (h * length + l) * headDim, headDim);
        return y;
    }
}
