using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Cases;

/// <summary>
/// Every benchmark case, by family, at the sizes a device gets: full sizes on a GPU and on the managed CPU backend,
/// small ones where ILGPU's kernels run on CPU hardware (ILGPU's CPU accelerator simulates each GPU thread with an OS
/// thread; an OpenCL CPU driver such as PoCL runs work-items as loops). The matmul algorithms are the device's own:
/// the ILGPU kernels by name, the managed backend's one blocked algorithm.
/// </summary>
public static class Catalog
{
    /// <summary>True when <paramref name="device"/> gets the small sizes.</summary>
    public static bool SmallSizesFor(ComputeDevice device) => device.IsCpuHardware && device.Kind != DeviceKind.ManagedCpu;

    /// <summary>Every family's cases.</summary>
    public static IEnumerable<BenchCase> All(ComputeDevice device, bool small) =>
        MatMul(device, small).Concat<BenchCase>(Softmax(small)).Concat(LayerNorm(small)).Concat(Attention(small))
            .Concat(SixteenBitAttention(device)).Concat(AdditiveAttention(small)).Concat(EncoderLayer(small)).Concat(Bert(small));

    /// <summary>
    /// Square products and one Linear layer, for each algorithm the device has; then the same with BF16 and F16 operands
    /// (fp32 accumulation), at 1024³–8192³ on a GPU.
    /// </summary>
    public static IEnumerable<MatMulCase> MatMul(ComputeDevice device, bool small)
    {
        var algorithms = device.Kind == DeviceKind.ManagedCpu ? [MatMulAlgorithm.Auto] : new[] { MatMulAlgorithm.Naive, MatMulAlgorithm.Tiled };
        var shapes = small
            ? new (int M, int N, int K, bool Linear)[] { (64, 64, 64, false), (128, 128, 128, false), (256, 256, 256, false), (64, 256, 128, true) }
            : [(256, 256, 256, false), (512, 512, 512, false), (1024, 1024, 1024, false), (2048, 2048, 2048, false), (512, 2048, 512, true)];
        foreach (var algorithm in algorithms)
        foreach (var (m, n, k, linear) in shapes)
            yield return new MatMulCase(m, n, k, linear, algorithm);
        var sixteenBitShapes = device.IsCpuHardware
            ? shapes
            : [(1024, 1024, 1024, false), (2048, 2048, 2048, false), (4096, 4096, 4096, false), (8192, 8192, 8192, false), (512, 2048, 512, true)];
        foreach (var dtype in new[] { DType.BF16, DType.F16 })
        foreach (var (m, n, k, linear) in sixteenBitShapes)
            yield return new MatMulCase(m, n, k, linear, MatMulAlgorithm.Auto, dtype);
    }

    /// <summary>Masked softmax over [B, H, L, L] scores, causal or not.</summary>
    public static IEnumerable<SoftmaxCase> Softmax(bool small)
    {
        var (batch, heads) = BatchHeads(small);
        foreach (bool causal in new[] { false, true })
        foreach (int length in small ? [64, 128, 256] : new[] { 256, 1024, 4096 })
            yield return new SoftmaxCase(batch, heads, length, causal);
    }

    /// <summary>Layer norm of [rows, width], with and without the residual.</summary>
    public static IEnumerable<LayerNormCase> LayerNorm(bool small)
    {
        foreach (bool residual in new[] { false, true })
        foreach (int width in small ? [256, 1024] : new[] { 512, 1024, 4096 })
            yield return new LayerNormCase(small ? 256 : 8192, width, residual);
    }

    /// <summary>Fused and unfused attention over [B, H, L, d], causal or not; then the ReLU normaliser at d 64.</summary>
    public static IEnumerable<AttentionCase> Attention(bool small)
    {
        var (batch, heads) = BatchHeads(small);
        var lengths = small ? [64, 128, 256] : new[] { 128, 256, 512, 1024, 2048, 4096 };
        foreach (bool fused in new[] { true, false })
        foreach (bool causal in new[] { false, true })
        foreach (int headDim in new[] { 64, 128 })
        foreach (int length in lengths)
            yield return new AttentionCase(batch, heads, length, headDim, causal, fused);
        foreach (bool fused in new[] { true, false })
        foreach (int length in lengths)
            yield return new AttentionCase(batch, heads, length, 64, causal: false, fused, ScoreNormalizer.Relu);
    }

    /// <summary>
    /// Fused attention with BF16 and F16 Q, K, V (fp32 output), causal or not, d 64 and 128: on a GPU at B·H = 64 for L 1024
    /// and 4096, B·H = 32 for L 16384 (FlashAttention's usual benchmark shapes) and B·H = 8 at L 65536 (its scratch column
    /// shows memory linear in L); on CPU hardware, where 16-bit operands are widened for the fp32 kernel, at B1 H2 and L 64–256.
    /// </summary>
    public static IEnumerable<AttentionCase> SixteenBitAttention(ComputeDevice device)
    {
        var shapes = device.IsCpuHardware
            ? new (int Batch, int Heads, int Length)[] { (1, 2, 64), (1, 2, 128), (1, 2, 256) }
            : [(4, 16, 1024), (4, 16, 4096), (2, 16, 16384), (1, 8, 65536)];
        foreach (var dtype in new[] { DType.BF16, DType.F16 })
        foreach (bool causal in new[] { false, true })
        foreach (int headDim in new[] { 64, 128 })
        foreach (var (batch, heads, length) in shapes)
            yield return new AttentionCase(batch, heads, length, headDim, causal, fused: true, dtype: dtype);
    }

    /// <summary>Fused and unfused additive attention (every width 64), softmax and ReLU normaliser, causal or not.</summary>
    public static IEnumerable<AdditiveAttentionCase> AdditiveAttention(bool small)
    {
        var (batch, heads) = BatchHeads(small);
        foreach (var normalizer in new[] { ScoreNormalizer.Softmax, ScoreNormalizer.Relu })
        foreach (bool fused in new[] { true, false })
        foreach (bool causal in new[] { false, true })
        foreach (int length in small ? [64, 128] : new[] { 128, 256, 512, 1024, 2048 })
            yield return new AdditiveAttentionCase(batch, heads, length, 64, causal, fused, normalizer);
    }

    /// <summary>
    /// The encoder layer of the ONNX Runtime comparison: the paper's base sizes at 256 tokens (small: d 64, 32 tokens), in
    /// fp32 and in bf16.
    /// </summary>
    public static IEnumerable<EncoderLayerCase> EncoderLayer(bool small)
    {
        foreach (var dtype in new[] { DType.F32, DType.BF16 })
            yield return small ? new EncoderLayerCase(64, 4, 256, 32, dtype) : new EncoderLayerCase(512, 8, 2048, 256, dtype);
    }

    /// <summary>
    /// A BERT encoder of all-MiniLM-L6-v2's configuration (small: two layers of d 64) at the sentence-embedding benchmark's
    /// shapes — one 16-token text, 32 texts of 128 tokens, and 32 texts padded to 128 (small: 1 × 16 and 4 × 24) — in fp32
    /// and bf16.
    /// </summary>
    public static IEnumerable<BertCase> Bert(bool small)
    {
        var config = small ? BertCase.Small : BertCase.MiniLm;
        var shapes = small ? new[] { (1, 16, false), (4, 24, true) } : [(1, 16, false), (32, 128, false), (32, 128, true)];
        foreach (var dtype in new[] { DType.F32, DType.BF16 })
        foreach (var (batch, length, padded) in shapes)
            yield return new BertCase(batch, length, padded, dtype, config);
    }

    private static (int Batch, int Heads) BatchHeads(bool small) => small ? (1, 2) : (2, 8);
}
