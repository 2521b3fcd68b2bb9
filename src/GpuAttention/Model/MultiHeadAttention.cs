using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>
/// MultiHead(Q, K, V) = Concat(head₁…headₕ)·W_o with headᵢ = Attention(Q·W_qᵢ, K·W_kᵢ, V·W_vᵢ): the h heads run
/// in one fused attention launch over [batch, heads, L, d_k]. The score is the paper's scaled dot product, or additive
/// (<paramref name="additive"/>, see <see cref="AdditiveScorer"/>); the weights are its softmax, or ReLU(score) over the
/// visible keys (<paramref name="normalizer"/>). With 16-bit projection weights the dot-product heads attend in that dtype
/// (Q, K and V rounded to it, fp32 statistics, an F32 result).
/// </summary>
public sealed class MultiHeadAttention(Linear query, Linear key, Linear value, Linear output, int heads,
    ScoreNormalizer normalizer = ScoreNormalizer.Softmax, AdditiveScorer? additive = null) : IDisposable
{
    private readonly int headDim = output.OutFeatures / heads;

    /// <summary>
    /// Loads PyTorch's <c>{prefix}in_proj_weight</c> (rows q, k, v), <c>in_proj_bias</c> and <c>out_proj</c>, and for an
    /// additive score (<c>score: additive</c>) the <see cref="AdditiveScorer"/>'s weights.
    /// </summary>
    public static MultiHeadAttention Load(WeightSource weights, string prefix, TransformerConfig config)
    {
        int d = config.DModel;
        Linear Projection(int index) => new(
            weights.LoadLinearWeightRows(prefix + "in_proj_weight", 3 * d, d, index * d, d),
            weights.LoadSlice(prefix + "in_proj_bias", 3 * d, index * d, d));
        var additive = config.Score == "additive" ? AdditiveScorer.Load(weights, prefix, config.HeadDim, config.AdditiveWidth) : null;
        return new MultiHeadAttention(Projection(0), Projection(1), Projection(2), Linear.Load(weights, prefix + "out_proj", d, d),
            config.Heads, config.Normalizer == "relu" ? ScoreNormalizer.Relu : ScoreNormalizer.Softmax, additive);
    }

    /// <summary>
    /// Attention of <paramref name="x"/> [batch, Lq, d_model] over <paramref name="memory"/> [batch, Lk, d_model]
    /// (x itself for self-attention) → a new [batch, Lq, d_model].
    /// </summary>
    public DeviceTensor Forward(DeviceTensor x, DeviceTensor memory, AttentionMask mask)
    {
        using var keys = Project(key, memory);
        using var values = Project(value, memory);
        return Attend(x, keys, values, keys.Shape[2], mask);
    }

    /// <summary>Projects <paramref name="source"/> into new key and value tensors [batch, heads, L, d_k] for a cache.</summary>
    public (DeviceTensor Keys, DeviceTensor Values) ProjectKeysAndValues(DeviceTensor source)
    {
        var keys = Project(key, source);
        try
        {
            return (keys, Project(value, source));
        }
        catch
        {
            keys.Dispose();
            throw;
        }
    }

    /// <summary>An empty [batch, heads, capacity, d_k] tensor for cached keys or values.</summary>
    public DeviceTensor AllocateKeysOrValues(ComputeDevice device, int batch, int capacity) => device.Allocate(batch, heads, capacity, headDim);

    /// <summary>
    /// Self-attention of one decoding step: appends the step's keys and values at row <paramref name="position"/>
    /// of <paramref name="cache"/>, then attends over rows 0…position (the causal mask is implied).
    /// </summary>
    public DeviceTensor ForwardCached(DeviceTensor x, LayerCache cache, int position)
    {
        using var k = key.Forward(x);
        using var v = value.Forward(x);
        HeadLayout.Split(k, cache.Keys, position);
        HeadLayout.Split(v, cache.Values, position);
        return Attend(x, cache.Keys, cache.Values, position + x.Shape[1], AttentionMask.Causal);
    }

    /// <summary>Attention of <paramref name="x"/> over precomputed keys and values (the encoder memory's, when decoding).</summary>
    public DeviceTensor Attend(DeviceTensor x, DeviceTensor keys, DeviceTensor values, int keyLength, AttentionMask mask)
    {
        using var q = Project(query, x);
        using var merged = AttendHeads(q, keys, values, keyLength, mask);
        return output.Forward(merged);
    }

    /// <summary>
    /// Self-attention of packed sequences <paramref name="x"/> [1, total, d_model] (<see cref="PackedSequences"/>): the
    /// projections run on the real tokens only; the heads attend in the padded layout with a key-padding mask; the output
    /// projection runs on the real tokens again → a new [1, total, d_model].
    /// </summary>
    public DeviceTensor ForwardPacked(DeviceTensor x, PackedSequences packing)
    {
        using var q = ProjectPadded(query, x, packing);
        using var keys = ProjectPadded(key, x, packing);
        using var values = ProjectPadded(value, x, packing);
        using var merged = AttendHeads(q, keys, values, packing.PaddedLength, AttentionMask.KeyPadding(packing.Lengths));
        using var packed = x.Device.Allocate(1, packing.Total, heads * headDim);
        HeadLayout.GatherRows(merged, packing.PackedSources, packed);
        return output.Forward(packed);
    }

    /// <summary>The heads' attention of q [batch, heads, Lq, d_k] → a new [batch, Lq, heads·d_k], before the output projection.</summary>
    private DeviceTensor AttendHeads(DeviceTensor q, DeviceTensor keys, DeviceTensor values, int keyLength, AttentionMask mask)
    {
        int batch = q.Shape[0], length = q.Shape[2];
        var device = q.Device;
        using var attended = device.Allocate(batch, heads, length, headDim);
        if (additive is null && query.WeightDType != DType.F32)
        {
            using var narrowQ = Narrowed(q);
            using var narrowKeys = Narrowed(keys);
            using var narrowValues = Narrowed(values);
            Attention.Fused(narrowQ, narrowKeys, narrowValues, attended, mask, keyLength: keyLength, normalizer: normalizer);
        }
        else if (additive is null)
            Attention.Fused(q, keys, values, attended, mask, keyLength: keyLength, normalizer: normalizer);
        else
            AdditiveAttention.Fused(q, keys, values, additive.QueryWeight, additive.KeyWeight, additive.ScoreVector, attended, mask,
                normalizer, keyLength: keyLength);
        var merged = device.Allocate(batch, length, heads * headDim);
        HeadLayout.Merge(attended, merged);
        return merged;
    }

    /// <summary><paramref name="x"/> rounded to the projection weights' 16-bit dtype, in a new tensor.</summary>
    private DeviceTensor Narrowed(DeviceTensor x)
    {
        var narrow = x.Device.Allocate(query.WeightDType, [.. x.Shape]);
        Elementwise.Convert(x, narrow);
        return narrow;
    }

    private DeviceTensor ProjectPadded(Linear projection, DeviceTensor x, PackedSequences packing)
    {
        using var flat = projection.Forward(x);
        using var padded = x.Device.Allocate(packing.Batch, packing.PaddedLength, heads * headDim);
        HeadLayout.GatherRows(flat, packing.PaddedSources, padded);
        var split = x.Device.Allocate(packing.Batch, heads, packing.PaddedLength, headDim);
        HeadLayout.Split(padded, split);
        return split;
    }

    private DeviceTensor Project(Linear projection, DeviceTensor x)
    {
        using var flat = projection.Forward(x);
        var split = x.Device.Allocate(x.Shape[0], heads, x.Shape[1], headDim);
        HeadLayout.Split(flat, split);
        return split;
    }

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        query.Dispose();
        key.Dispose();
        value.Dispose();
        output.Dispose();
        additive?.Dispose();
    }
}
