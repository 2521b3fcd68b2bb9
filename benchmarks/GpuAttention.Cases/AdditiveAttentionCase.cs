using GpuAttention.Ops;
using GpuAttention.Weights;
using GpuAttention.Problems;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Cases;

/// <summary>
/// Additive attention, normalise(wᵀ·tanh(q·W_q + k·W_k) [+ causal])·V over [batch, heads, L, width] with d_q = d_k = d_v =
/// d_a = width, fused (scores streamed, no L×L buffer) or unfused (scores → softmax → matmul). Work counted as the
/// useful score and P·V multiply-adds, 2·B·H·L²·(d_a + d_v), halved when causal; each score also costs d_a tanh, which
/// the rate does not count.
/// </summary>
public sealed class AdditiveAttentionCase(int batch, int heads, int length, int width, bool causal, bool fused,
    ScoreNormalizer normalizer = ScoreNormalizer.Softmax)
    : BenchCase("additive-attention",
        $"{(fused ? "fused" : "unfused")}{(normalizer == ScoreNormalizer.Relu ? " relu" : "")}{(causal ? " causal" : "")} d{width}",
        $"B{batch} H{heads} L{length}", length, "L (Lq = Lk)", 4.0 * batch * heads * length * length * width / (causal ? 2 : 1),
        WorkUnit.Flops)
{
    private AttentionMask Mask => causal ? AttentionMask.Causal : AttentionMask.None;

    /// <summary>The benchmarked path at L = min(L, 64), two heads, the benchmarked width, mask and normaliser.</summary>
    public override double Check(ComputeDevice device)
    {
        const int checkHeads = 2;
        int l = Math.Min(length, 64), count = checkHeads * l * width;
        var (q, k, v) = (RandomData.Uniform(count, 4), RandomData.Uniform(count, 5), RandomData.Uniform(count, 6));
        var (wq, wk, w) = (RandomData.Uniform(width * width, 7), RandomData.Uniform(width * width, 8), RandomData.Uniform(width, 9));
        using var tq = device.Upload(q, 1, checkHeads, l, width);
        using var tk = device.Upload(k, 1, checkHeads, l, width);
        using var tv = device.Upload(v, 1, checkHeads, l, width);
        using var twq = device.Upload(wq, width, width);
        using var twk = device.Upload(wk, width, width);
        using var tw = device.Upload(w, width);
        using var to = device.Allocate(1, checkHeads, l, width);
        Run(tq, tk, tv, twq, twk, tw, to);
        var reference = causal ? new ReferenceMask { Right = 0 } : new ReferenceMask();
        var (want, _) = ReferenceOps.AdditiveAttention(q, k, v, wq, wk, w, 1, checkHeads, l, l, width, width, width, width, reference,
            normalizer == ScoreNormalizer.Relu);
        return RelativeError(to.ToArray(), want);
    }

    public override PreparedCase Prepare(ComputeDevice device)
    {
        int[] shape = [batch, heads, length, width];
        int count = batch * heads * length * width;
        var q = device.Upload(RandomData.Uniform(count, 1), shape);
        var k = device.Upload(RandomData.Uniform(count, 2), shape);
        var v = device.Upload(RandomData.Uniform(count, 3), shape);
        var wq = device.Upload(RandomData.Uniform(width * width, 7), width, width);
        var wk = device.Upload(RandomData.Uniform(width * width, 8), width, width);
        var w = device.Upload(RandomData.Uniform(width, 9), width);
        var o = device.Allocate(shape);
        return new PreparedCase(device, () => Run(q, k, v, wq, wk, w, o),
            () => new Dictionary<string, HostTensor>
            {
                ["q"] = PreparedCase.Host(q), ["k"] = PreparedCase.Host(k), ["v"] = PreparedCase.Host(v),
                ["queryProjection"] = PreparedCase.Host(wq), ["keyProjection"] = PreparedCase.Host(wk),
                ["scoreVector"] = PreparedCase.Host(w), ["output"] = PreparedCase.Host(o),
            },
            q, k, v, wq, wk, w, o);
    }

    /// <inheritdoc />
    public override object Problem => new
    {
        op = "additiveAttention", batch, heads, length, width, causal, fused,
        normalizer = normalizer == ScoreNormalizer.Relu ? "relu" : "softmax",
    };

    private void Run(DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor wq, DeviceTensor wk, DeviceTensor w, DeviceTensor o)
    {
        if (fused)
            AdditiveAttention.Fused(q, k, v, wq, wk, w, o, Mask, normalizer);
        else
            AdditiveAttention.Unfused(q, k, v, wq, wk, w, o, Mask, normalizer);
    }
}
