using GpuAttention.Model;
using GpuAttention.Reference;
using GpuAttention.Runtime;
using GpuAttention.Weights;

namespace GpuAttention.Cases;

/// <summary>
/// A BERT encoder of all-MiniLM-L6-v2's configuration (6 layers, d 384, 12 heads, FFN 1536, exact GELU, 30 522 words) with
/// random weights under Hugging Face's tensor names, over <paramref name="batch"/> sequences of at most
/// <paramref name="length"/> random tokens — all that length, or spread 16…length when <paramref name="padded"/> — run
/// packed (<see cref="BertModel.ForwardPacked"/>); with a 16-bit <paramref name="dtype"/> its Linear weights and products in
/// that format. Work counts batch × length tokens, as the ONNX Runtime comparison does. The GPU check compares it with
/// Hugging Face's <c>BertModel</c> loaded with the same weights (tools/gpu/torch_compare.py).
/// </summary>
public sealed class BertCase(int batch, int length, bool padded, DType dtype, BertConfig config)
    : BenchCase("bert encoder", $"{Name(config)} {dtype.ToString().ToLowerInvariant()}", $"{batch}x{length}{(padded ? " padded" : "")}",
        (double)batch * length, "batch × L (tokens)", (double)batch * length, WorkUnit.Tokens)
{
    /// <summary>all-MiniLM-L6-v2's configuration.</summary>
    public static BertConfig MiniLm { get; } = new()
    {
        ModelType = "bert", Architectures = ["BertModel"], HiddenSize = 384, Heads = 12, Layers = 6, IntermediateSize = 1536,
        HiddenActivation = "gelu", LayerNormEpsilon = 1e-12f, MaxPositions = 512, TypeVocabulary = 2, Vocabulary = 30522,
    };

    /// <summary>A two-layer configuration of the same form for small runs (the CPU accelerator, the stand-in rehearsal).</summary>
    public static BertConfig Small { get; } = MiniLm with { HiddenSize = 64, Heads = 2, Layers = 2, IntermediateSize = 128, Vocabulary = 1000, MaxPositions = 128 };

    /// <summary>Hugging Face BertModel parameter names (no pooler) with small random values (× 0.1; norm gains near 1).</summary>
    public static Dictionary<string, HostTensor> RandomWeights(BertConfig config)
    {
        int seed = 30, d = config.HiddenSize, ff = config.IntermediateSize;
        var weights = new Dictionary<string, HostTensor>();
        void Random(string name, params int[] shape) =>
            weights[name] = new(shape, RandomData.Uniform(shape.Aggregate(1, (a, b) => a * b), seed++).Select(v => v * 0.1f).ToArray());
        void Norm(string name)
        {
            weights[name + ".weight"] = new([d], RandomData.Uniform(d, seed++).Select(v => 1f + v * 0.1f).ToArray());
            Random(name + ".bias", d);
        }
        void Dense(string name, int outputs, int inputs)
        {
            Random(name + ".weight", outputs, inputs);
            Random(name + ".bias", outputs);
        }
        Random("embeddings.word_embeddings.weight", config.Vocabulary, d);
        Random("embeddings.position_embeddings.weight", config.MaxPositions, d);
        Random("embeddings.token_type_embeddings.weight", config.TypeVocabulary, d);
        Norm("embeddings.LayerNorm");
        for (int layer = 0; layer < config.Layers; layer++)
        {
            string prefix = $"encoder.layer.{layer}.";
            foreach (string part in new[] { "query", "key", "value" })
                Dense($"{prefix}attention.self.{part}", d, d);
            Dense(prefix + "attention.output.dense", d, d);
            Norm(prefix + "attention.output.LayerNorm");
            Dense(prefix + "intermediate.dense", ff, d);
            Dense(prefix + "output.dense", d, ff);
            Norm(prefix + "output.LayerNorm");
        }
        return weights;
    }

    /// <summary>
    /// fp32: <see cref="BenchCase.Tolerance"/>. 16-bit: 2u per rounded product stage, four stages a layer (Q|K|V, attention,
    /// output projection, feed-forward), twice for terms up to twice an output's size — the budget ModelTests and the GPU
    /// check's encoder layer use (u = 2⁻⁹ for bf16, 2⁻¹² for f16).
    /// </summary>
    public override double CheckTolerance => dtype == DType.F32 ? Tolerance : 2 * RoundingUnit * 4 * config.Layers * 2;

    private double RoundingUnit => dtype == DType.BF16 ? Math.Pow(2, -9) : Math.Pow(2, -12);

    /// <summary>
    /// Two sequences (7 and 3 tokens) through the benchmarked configuration, packed, against the double-precision
    /// composition run one sequence at a time (the 16-bit variant against the fp32 composition, so its error is the rounding).
    /// </summary>
    public override double Check(ComputeDevice device)
    {
        var weights = RandomWeights(config);
        int[][] sequences = [Tokens(7, 1), Tokens(3, 2)];
        using var model = BertModel.FromTensors(device, weights, config, "random", dtype);
        var (hidden, _) = model.ForwardPacked(sequences);
        using (hidden)
        {
            var floats = weights.ToDictionary(w => w.Key, w => w.Value.Data);
            double[] want = [.. sequences.SelectMany(tokens => ReferenceOps.Bert(tokens, floats, config.HiddenSize, config.Heads,
                config.IntermediateSize, config.Layers, config.LayerNormEpsilon))];
            return RelativeError(hidden.ToArray(), want);
        }
    }

    public override PreparedCase Prepare(ComputeDevice device)
    {
        var weights = RandomWeights(config);
        var model = BertModel.FromTensors(device, weights, config, "random", dtype);
        int[][] sequences = [.. Enumerable.Range(0, batch).Select(b =>
            Tokens(padded && batch > 1 ? 16 + (length - 16) * b / (batch - 1) : length, 100 + b))];
        var ids = new float[batch * length];
        var mask = new float[batch * length];
        for (int b = 0; b < batch; b++)
        for (int t = 0; t < sequences[b].Length; t++)
            (ids[b * length + t], mask[b * length + t]) = (sequences[b][t], 1f);
        DeviceTensor? output = null;
        return new PreparedCase(device,
            () =>
            {
                output?.Dispose();
                output = model.ForwardPacked(sequences).Hidden;
            },
            () => new Dictionary<string, HostTensor>(weights)
            {
                // Token ids and the attention mask as Hugging Face takes them ([batch, length], padded with id 0); ids are
                // below 2²⁴, so F32 holds them exactly.
                ["input_ids"] = new([batch, length], ids),
                ["attention_mask"] = new([batch, length], mask),
                ["output"] = PreparedCase.Host(output ?? throw new InvalidOperationException("Run the case before downloading its output.")),
            },
            model, new Disposer(() => output?.Dispose()));
    }

    /// <inheritdoc />
    public override object Problem => new
    {
        op = "bert", batch, length, padded, hiddenSize = config.HiddenSize, heads = config.Heads, layers = config.Layers,
        intermediateSize = config.IntermediateSize, vocabulary = config.Vocabulary, maxPositions = config.MaxPositions,
        typeVocabulary = config.TypeVocabulary, hiddenAct = config.HiddenActivation, layerNormEpsilon = config.LayerNormEpsilon,
        dtype = dtype.ToString().ToLowerInvariant(),
    };

    private static string Name(BertConfig config) => config.HiddenSize == MiniLm.HiddenSize && config.Layers == MiniLm.Layers ? "MiniLM-L6" : $"d{config.HiddenSize} x{config.Layers}";

    /// <summary>[CLS], random words of the table, [SEP] — ids 101 and 102 when the table has them.</summary>
    private int[] Tokens(int count, int seed)
    {
        var random = new Random(seed);
        int words = config.Vocabulary;
        return [.. Enumerable.Range(0, count).Select(t =>
            t == 0 ? Math.Min(101, words - 1) : t == count - 1 ? Math.Min(102, words - 1) : random.Next(words / 16, words))];
    }

    private sealed class Disposer(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}
