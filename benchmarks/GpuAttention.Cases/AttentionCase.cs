using GpuAttention.Weights;
using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Cases;

/// <summary>
/// softmax(Q·Kᵀ/√d [+ causal])·V (or the ReLU normaliser in place of the softmax) over [batch, heads, L, d], fused
/// (flash-style) or unfused (matmul → softmax → matmul); FLOPs 4·B·H·L²·d, halved when causal (the useful products, though
/// the unfused path computes them all). With a 16-bit <paramref name="dtype"/> (fused only), Q, K and V are that dtype
/// and the output F32 (so it is compared with an fp32 reference of the same values).
/// </summary>
public sealed class AttentionCase(int batch, int heads, int length, int headDim, bool causal, bool fused,
    ScoreNormalizer normalizer = ScoreNormalizer.Softmax, DType dtype = DType.F32)
    : BenchCase("attention",
        $"{(dtype == DType.F32 ? "" : dtype.ToString().ToLowerInvariant() + " ")}{(fused ? "fused" : "unfused")}{(normalizer == ScoreNormalizer.Relu ? " relu" : "")}{(causal ? " causal" : "")} d{headDim}",
        $"B{batch} H{heads} L{length}", length, "L (Lq = Lk)", 4.0 * batch * heads * length * length * headDim / (causal ? 2 : 1),
        WorkUnit.Flops)
{
    private AttentionMask Mask => causal ? AttentionMask.Causal : AttentionMask.None;

    /// <summary>The benchmarked path at L = min(L, 128), two heads, the benchmarked d and mask.</summary>
    public override double Check(ComputeDevice device)
    {
        const int checkHeads = 2;
        int l = Math.Min(length, 128), count = checkHeads * l * headDim;
        var (q, k, v) = (RandomData.Uniform(count, 4), RandomData.Uniform(count, 5), RandomData.Uniform(count, 6));
        using var tq = Operand(device, dtype, q, 1, checkHeads, l, headDim);
        using var tk = Operand(device, dtype, k, 1, checkHeads, l, headDim);
        using var tv = Operand(device, dtype, v, 1, checkHeads, l, headDim);
        using var to = device.Allocate(1, checkHeads, l, headDim);
        Run(tq, tk, tv, to);
        // The reference takes the values the kernel saw: 16-bit operands download as their exact floats.
        (q, k, v) = (tq.ToArray(), tk.ToArray(), tv.ToArray());
        var reference = causal ? new ReferenceMask { Right = 0 } : new ReferenceMask();
        var (want, _) = ReferenceOps.Attention(q, k, v, 1, checkHeads, l, l, headDim, reference, 1.0 / Math.Sqrt(headDim),
            normalizer == ScoreNormalizer.Relu);
        return RelativeError(to.ToArray(), want);
    }

    public override PreparedCase Prepare(ComputeDevice device)
    {
        int[] shape = [batch, heads, length, headDim];
        int count = batch * heads * length * headDim;
        var q = Operand(device, dtype, RandomData.Uniform(count, 1), shape);
        var k = Operand(device, dtype, RandomData.Uniform(count, 2), shape);
        var v = Operand(device, dtype, RandomData.Uniform(count, 3), shape);
        var o = device.Allocate(shape);
        return new PreparedCase(device, () => Run(q, k, v, o),
            () => new Dictionary<string, HostTensor>
            {
                ["q"] = PreparedCase.Host(q), ["k"] = PreparedCase.Host(k), ["v"] = PreparedCase.Host(v), ["output"] = PreparedCase.Host(o),
            },
            q, k, v, o);
    }

    /// <inheritdoc />
    public override object Problem => new
    {
        op = "attention", batch, heads, length, headDim, causal, fused, normalizer = normalizer == ScoreNormalizer.Relu ? "relu" : "softmax",
        dtype = dtype.ToString().ToLowerInvariant(),
    };


    private void Run(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o)
    {
        if (fused)
            Attention.Fused(q, k, v, o, Mask, normalizer: normalizer);
        else
            Attention.Unfused(q, k, v, o, Mask, normalizer: normalizer);
    }
}
