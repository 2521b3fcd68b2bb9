using GpuAttention.Model;
using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Reference;
using GpuAttention.Runtime;
using GpuAttention.Weights;

namespace GpuAttention.Tests;

/// <summary>The model layer's attention options: additive scoring and the ReLU normaliser, in a module and in a loaded model.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class AttentionFormsModelTests
{
    public static TheoryData<string, string, string> Forms()
    {
        var data = new TheoryData<string, string, string>();
        foreach (string device in TestDevices.Names)
        foreach (var (score, normalizer) in new[] { ("dot", "relu"), ("additive", "softmax"), ("additive", "relu") })
            data.Add(device, score, normalizer);
        return data;
    }

    /// <summary>
    /// Multi-head self-attention with a causal mask against a double-precision composition: projections and heads in
    /// double, the attention of each head by <see cref="ReferenceOps"/>, the output projection in double.
    /// </summary>
    [Theory]
    [MemberData(nameof(Forms))]
    public void MultiHeadAttentionMatchesReference(string deviceName, string score, string normalizer)
    {
        var device = TestDevices.Get(deviceName);
        const int batch = 2, length = 7, dModel = 12, heads = 3, headDim = dModel / heads, width = 5;
        bool relu = normalizer == "relu", additive = score == "additive";
        float[] Random(int count, int seed) => RandomData.Uniform(count, seed);
        var x = Random(batch * length * dModel, 1);
        var weights = Enumerable.Range(0, 4).Select(i => Random(dModel * dModel, 10 + i)).ToArray();
        var biases = Enumerable.Range(0, 4).Select(i => Random(dModel, 20 + i)).ToArray();
        var (wq, wk, w) = (Random(headDim * width, 30), Random(headDim * width, 31), Random(width, 32));

        Linear Layer(int i) => new(device.Upload(weights[i], dModel, dModel), device.Upload(biases[i], dModel));
        var scorer = additive ? new AdditiveScorer(device.Upload(wq, headDim, width), device.Upload(wk, headDim, width), device.Upload(w, width)) : null;
        using var attention = new MultiHeadAttention(Layer(0), Layer(1), Layer(2), Layer(3), heads,
            relu ? ScoreNormalizer.Relu : ScoreNormalizer.Softmax, scorer);
        using var input = device.Upload(x, batch, length, dModel);
        using var got = attention.Forward(input, input, AttentionMask.Causal);

        // [batch, length, dModel] · Wᵀ + b, split into [batch, heads, length, headDim] (as float for the reference's inputs).
        float[] ProjectHeads(int i)
        {
            var result = new float[batch * heads * length * headDim];
            for (int b = 0; b < batch; b++)
            for (int t = 0; t < length; t++)
            for (int o = 0; o < dModel; o++)
            {
                double sum = biases[i][o];
                for (int c = 0; c < dModel; c++)
                    sum += (double)x[(b * length + t) * dModel + c] * weights[i][o * dModel + c];
                result[((b * heads + o / headDim) * length + t) * headDim + o % headDim] = (float)sum;
            }
            return result;
        }
        var (q, k, v) = (ProjectHeads(0), ProjectHeads(1), ProjectHeads(2));
        var mask = new ReferenceMask { Right = 0 };
        var (attended, _) = additive
            ? ReferenceOps.AdditiveAttention(q, k, v, wq, wk, w, batch, heads, length, length, headDim, headDim, headDim, width, mask, relu)
            : ReferenceOps.Attention(q, k, v, batch, heads, length, length, headDim, mask, 1 / Math.Sqrt(headDim), relu);
        var want = new double[batch * length * dModel];
        for (int b = 0; b < batch; b++)
        for (int t = 0; t < length; t++)
        for (int o = 0; o < dModel; o++)
        {
            double sum = biases[3][o];
            for (int c = 0; c < dModel; c++)
                sum += attended[((b * heads + c / headDim) * length + t) * headDim + c % headDim] * weights[3][o * dModel + c];
            want[(b * length + t) * dModel + o] = sum;
        }
        Numerics.AssertClose(want, got.ToArray(), what: $"{score}/{normalizer}");
    }

    /// <summary>
    /// The sample model with <c>score: additive</c> and <c>normalizer: relu</c> in its config and the scorer's weights added:
    /// it loads, and greedy decoding with the key/value cache (attention over a prefix of the cache, keyLength) gives the
    /// tokens decoding without it gives (every step over full keys). A missing scorer weight is an error naming it.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void AdditiveReluModelLoadsAndDecodesTheSameWithAndWithoutTheCache(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        string folder = Directory.CreateTempSubdirectory("attention-forms").FullName;
        try
        {
            const int width = 6;
            var config = TransformerConfig.Load(Path.Combine("samples", "reverse-digits", "config.json"));
            var tensors = new Dictionary<string, HostTensor>(SafeTensors.Read(Path.Combine("samples", "reverse-digits", "model.safetensors")));
            var prefixes = Enumerable.Range(0, config.EncoderLayers).Select(i => $"encoder.layers.{i}.self_attn.")
                .Concat(Enumerable.Range(0, config.DecoderLayers).SelectMany(i => new[] { $"decoder.layers.{i}.self_attn.", $"decoder.layers.{i}.multihead_attn." }));
            int seed = 100;
            foreach (string prefix in prefixes)
            {
                tensors[prefix + "score.query_weight"] = new HostTensor([config.HeadDim, width], RandomData.Uniform(config.HeadDim * width, seed++));
                tensors[prefix + "score.key_weight"] = new HostTensor([config.HeadDim, width], RandomData.Uniform(config.HeadDim * width, seed++));
                tensors[prefix + "score.vector"] = new HostTensor([width], RandomData.Uniform(width, seed++, 3f));
            }
            string json = File.ReadAllText(Path.Combine("samples", "reverse-digits", "config.json")).TrimEnd().TrimEnd('}')
                + $", \"score\": \"additive\", \"normalizer\": \"relu\", \"additive_dim\": {width} }}";
            File.WriteAllText(Path.Combine(folder, "config.json"), json);
            SafeTensors.Write(Path.Combine(folder, "model.safetensors"), tensors);

            using (var model = Transformer.Load(device, folder))
            {
                int[][] source = [[4, 5, 6, 7, 8], [9, 3, 12, 0, 0]];
                int[] lengths = [5, 3];
                var cached = Generation.Greedy(model, source, lengths, maxNewTokens: 6, useCache: true);
                var uncached = Generation.Greedy(model, source, lengths, maxNewTokens: 6, useCache: false);
                Assert.Equal(uncached, cached);
            }

            tensors.Remove("decoder.layers.1.multihead_attn.score.vector");
            SafeTensors.Write(Path.Combine(folder, "model.safetensors"), tensors);
            var error = Assert.Throws<InvalidDataException>(() => Transformer.Load(device, folder).Dispose());
            Assert.Contains("decoder.layers.1.multihead_attn.score.vector", error.Message);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
