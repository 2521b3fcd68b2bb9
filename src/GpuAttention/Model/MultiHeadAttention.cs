using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>
/// MultiHead(Q, K, V) = Concat(head₁…headₕ)·W_o with headᵢ = Attention(Q·W_qᵢ, K·W_kᵢ, V·W_vᵢ): the h heads run
/// in one fused attention launch over [batch, heads, L, d_k]. Self-attention projects Q, K and V in one product with the
/// three weights stacked ([3·d_model, d_model], PyTorch's <c>in_proj_weight</c>) and splits the heads out of its columns;
/// attention over another sequence (the decoder's cross-attention) keeps three projections. The score is the paper's
/// scaled dot product, or additive (see <see cref="AdditiveScorer"/>); the weights are its softmax, or ReLU(score) over the
/// visible keys. With 16-bit projection weights the dot-product heads attend in that dtype (Q, K and V rounded to it, fp32
/// statistics, an F32 result).
/// </summary>
public sealed class MultiHeadAttention : IDisposable
{
    /// <summary>Self-attention's stacked Q|K|V projection, or null when the three are separate.</summary>
    private readonly Linear? queryKeyValue;
    private readonly Linear? query, key, value;
    private readonly Linear output;
    private readonly int heads, headDim;
    private readonly ScoreNormalizer normalizer;
    private readonly AdditiveScorer? additive;

    /// <summary>Attention with separate Q, K and V projections: queries from one sequence, keys and values from any.</summary>
    public MultiHeadAttention(Linear query, Linear key, Linear value, Linear output, int heads,
        ScoreNormalizer normalizer = ScoreNormalizer.Softmax, AdditiveScorer? additive = null)
        : this(output, heads, normalizer, additive)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        this.query = query;
        this.key = key;
        this.value = value;
    }

    /// <summary>
    /// Self-attention whose Q, K and V come from one product with <paramref name="queryKeyValue"/> (3·d_model outputs: the
    /// query's rows of the weight first, then the key's, then the value's).
    /// </summary>
    public static MultiHeadAttention SelfAttention(Linear queryKeyValue, Linear output, int heads,
        ScoreNormalizer normalizer = ScoreNormalizer.Softmax, AdditiveScorer? additive = null)
    {
        ArgumentNullException.ThrowIfNull(queryKeyValue);
        ArgumentNullException.ThrowIfNull(output);
        if (queryKeyValue.OutFeatures != 3 * output.OutFeatures)
            throw new ArgumentException(
                $"Argument 'queryKeyValue' must have 3·d_model = {3 * output.OutFeatures} outputs, but has {queryKeyValue.OutFeatures}.", nameof(queryKeyValue));
        return new MultiHeadAttention(output, heads, normalizer, additive, queryKeyValue);
    }

    private MultiHeadAttention(Linear output, int heads, ScoreNormalizer normalizer, AdditiveScorer? additive, Linear? queryKeyValue = null)
    {
        this.queryKeyValue = queryKeyValue;
        this.output = output;
        this.heads = heads;
        headDim = output.OutFeatures / heads;
        this.normalizer = normalizer;
        this.additive = additive;
    }

    /// <summary>
    /// Loads attention over another sequence from PyTorch's <c>{prefix}in_proj_weight</c> (rows q, k, v, as three
    /// projections), <c>in_proj_bias</c> and <c>out_proj</c>, and for an additive score the <see cref="AdditiveScorer"/>'s weights.
    /// </summary>
    public static MultiHeadAttention Load(WeightSource weights, string prefix, TransformerConfig config)
    {
        int d = config.DModel;
        Linear Projection(int index) => new(
            weights.LoadLinearWeightRows(prefix + "in_proj_weight", 3 * d, d, index * d, d),
            weights.LoadSlice(prefix + "in_proj_bias", 3 * d, index * d, d));
        return new MultiHeadAttention(Projection(0), Projection(1), Projection(2), Linear.Load(weights, prefix + "out_proj", d, d),
            config.Heads, Normalizer(config), Additive(weights, prefix, config));
    }

    /// <summary>Loads self-attention from the same tensors as <see cref="Load"/>, <c>in_proj_weight</c> as one stacked projection.</summary>
    public static MultiHeadAttention LoadSelfAttention(WeightSource weights, string prefix, TransformerConfig config)
    {
        int d = config.DModel;
        var queryKeyValue = new Linear(weights.LoadLinearWeight(prefix + "in_proj_weight", 3 * d, d), weights.Load(prefix + "in_proj_bias", 3 * d));
        return SelfAttention(queryKeyValue, Linear.Load(weights, prefix + "out_proj", d, d), config.Heads, Normalizer(config),
            Additive(weights, prefix, config));
    }

    /// <summary>
    /// Attention of <paramref name="x"/> [batch, Lq, d_model] over <paramref name="memory"/> [batch, Lk, d_model]
    /// (x itself for self-attention, the only choice when Q, K and V are projected together) → a new [batch, Lq, d_model].
    /// </summary>
    public DeviceTensor Forward(DeviceTensor x, DeviceTensor memory, AttentionMask mask)
    {
        if (queryKeyValue is null)
        {
            using var keys = Project(key!, memory);
            using var values = Project(value!, memory);
            return Attend(x, keys, values, keys.Shape[2], mask);
        }
        if (!ReferenceEquals(x, memory))
            throw new ArgumentException("Argument 'memory' must be 'x': this module projects Q, K and V of one sequence together (self-attention).",
                nameof(memory));
        using var stacked = queryKeyValue.Forward(x);
        using var q = Part(stacked, 0);
        using var k = Part(stacked, 1);
        using var v = Part(stacked, 2);
        return Output(q, k, v, x.Shape[1], mask);
    }

    /// <summary>Projects <paramref name="source"/> into new key and value tensors [batch, heads, L, d_k] for a cache.</summary>
    public (DeviceTensor Keys, DeviceTensor Values) ProjectKeysAndValues(DeviceTensor source)
    {
        ThrowIfSelfAttention();
        var keys = Project(key!, source);
        try
        {
            return (keys, Project(value!, source));
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
        int d = heads * headDim;
        if (queryKeyValue is null)
        {
            using var k = key!.Forward(x);
            using var v = value!.Forward(x);
            HeadLayout.Split(k, cache.Keys, position);
            HeadLayout.Split(v, cache.Values, position);
            return Attend(x, cache.Keys, cache.Values, position + x.Shape[1], AttentionMask.Causal);
        }
        using var stacked = queryKeyValue.Forward(x);
        HeadLayout.Split(stacked, cache.Keys, position, firstFeature: d);
        HeadLayout.Split(stacked, cache.Values, position, firstFeature: 2 * d);
        using var q = Part(stacked, 0);
        return Output(q, cache.Keys, cache.Values, position + x.Shape[1], AttentionMask.Causal);
    }

    /// <summary>Attention of <paramref name="x"/> over precomputed keys and values (the encoder memory's, when decoding).</summary>
    public DeviceTensor Attend(DeviceTensor x, DeviceTensor keys, DeviceTensor values, int keyLength, AttentionMask mask)
    {
        ThrowIfSelfAttention();
        using var q = Project(query!, x);
        return Output(q, keys, values, keyLength, mask);
    }

    /// <summary>
    /// Self-attention of packed sequences <paramref name="x"/> [1, total, d_model] (<see cref="PackedSequences"/>): the
    /// projections run on the real tokens only; the heads are gathered straight into the padded layout and attend with a
    /// key-padding mask; the merge gathers the real tokens back for the output projection → a new [1, total, d_model].
    /// </summary>
    public DeviceTensor ForwardPacked(DeviceTensor x, PackedSequences packing)
    {
        DeviceTensor q, k, v;
        if (queryKeyValue is null)
        {
            q = PackedPart(query!, x, packing);
            k = PackedPart(key!, x, packing);
            v = PackedPart(value!, x, packing);
        }
        else
        {
            using var stacked = queryKeyValue.Forward(x);
            q = PaddedHeads(stacked, packing, 0);
            k = PaddedHeads(stacked, packing, 1);
            v = PaddedHeads(stacked, packing, 2);
        }
        using (q)
        using (k)
        using (v)
        {
            using var attended = AttendHeads(q, k, v, packing.PaddedLength, AttentionMask.KeyPadding(packing.Lengths));
            using var merged = x.Device.Allocate(1, packing.Total, heads * headDim);
            HeadLayout.MergeGather(attended, packing.PackedSources, merged);
            return output.Forward(merged);
        }
    }

    /// <summary>The heads' attention, merged and projected by W_o → a new [batch, Lq, d_model].</summary>
    private DeviceTensor Output(DeviceTensor q, DeviceTensor keys, DeviceTensor values, int keyLength, AttentionMask mask)
    {
        using var attended = AttendHeads(q, keys, values, keyLength, mask);
        using var merged = q.Device.Allocate(q.Shape[0], q.Shape[2], heads * headDim);
        HeadLayout.Merge(attended, merged);
        return output.Forward(merged);
    }

    /// <summary>The heads' attention of q [batch, heads, Lq, d_k] → a new [batch, heads, Lq, d_k].</summary>
    private DeviceTensor AttendHeads(DeviceTensor q, DeviceTensor keys, DeviceTensor values, int keyLength, AttentionMask mask)
    {
        var device = q.Device;
        var attended = device.Allocate([.. q.Shape]);
        try
        {
            if (additive is null && ProjectionDType != DType.F32)
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
            return attended;
        }
        catch
        {
            attended.Dispose();
            throw;
        }
    }

    private DType ProjectionDType => (queryKeyValue ?? query)!.WeightDType;

    /// <summary><paramref name="x"/> rounded to the projection weights' 16-bit dtype, in a new tensor.</summary>
    private DeviceTensor Narrowed(DeviceTensor x)
    {
        var narrow = x.Device.Allocate(ProjectionDType, [.. x.Shape]);
        Elementwise.Convert(x, narrow);
        return narrow;
    }

    /// <summary>Part <paramref name="index"/> (0 Q, 1 K, 2 V) of a stacked [batch, L, 3·d_model] product as a new [batch, heads, L, d_k].</summary>
    private DeviceTensor Part(DeviceTensor stacked, int index)
    {
        var split = stacked.Device.Allocate(stacked.Shape[0], heads, stacked.Shape[1], headDim);
        HeadLayout.Split(stacked, split, firstFeature: index * heads * headDim);
        return split;
    }

    /// <summary>Features index·d_model … of packed rows, gathered into a new padded [batch, heads, L_max, d_k].</summary>
    private DeviceTensor PaddedHeads(DeviceTensor packed, PackedSequences packing, int index)
    {
        var split = packed.Device.Allocate(packing.Batch, heads, packing.PaddedLength, headDim);
        HeadLayout.GatherSplit(packed, packing.PaddedSources, split, firstFeature: index * heads * headDim);
        return split;
    }

    private DeviceTensor PackedPart(Linear projection, DeviceTensor x, PackedSequences packing)
    {
        using var flat = projection.Forward(x);
        return PaddedHeads(flat, packing, 0);
    }

    private DeviceTensor Project(Linear projection, DeviceTensor x)
    {
        using var flat = projection.Forward(x);
        return Part(flat, 0);
    }

    private void ThrowIfSelfAttention()
    {
        if (queryKeyValue is not null)
            throw new InvalidOperationException(
                "This module projects Q, K and V of one sequence together (self-attention); attention over precomputed or other keys " +
                "needs separate projections (MultiHeadAttention.Load).");
    }

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        queryKeyValue?.Dispose();
        query?.Dispose();
        key?.Dispose();
        value?.Dispose();
        output.Dispose();
        additive?.Dispose();
    }

    private static ScoreNormalizer Normalizer(TransformerConfig config) => config.Normalizer == "relu" ? ScoreNormalizer.Relu : ScoreNormalizer.Softmax;

    private static AdditiveScorer? Additive(WeightSource weights, string prefix, TransformerConfig config) =>
        config.Score == "additive" ? AdditiveScorer.Load(weights, prefix, config.HeadDim, config.AdditiveWidth) : null;
}
