using System.Buffers.Binary;
using System.Text;
using GpuAttention.Model;
using GpuAttention.Weights;

namespace GpuAttention.Tests;

/// <summary>The safetensors reader round-trips, and refuses every kind of corrupt file with a message naming the tensor.</summary>
public sealed class SafeTensorsTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("safetensors-tests").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Fact]
    public void RoundTripsTensors()
    {
        var tensors = new Dictionary<string, HostTensor>
        {
            ["b.bias"] = new([3], [1f, -2.5f, float.NegativeInfinity]),
            ["a.weight"] = new([2, 2], [0.1f, 0.2f, 0.3f, 0.4f]),
        };
        string path = Path.Combine(directory, "model.safetensors");
        SafeTensors.Write(path, tensors);
        var read = SafeTensors.Read(path);
        Assert.Equal(tensors.Keys.Order(), read.Keys.Order());
        foreach (var (name, tensor) in tensors)
        {
            Assert.Equal(tensor.Shape, read[name].Shape);
            Assert.Equal(tensor.Data, read[name].Data);
        }
    }

    public static TheoryData<string, string, string> CorruptHeaders() => new()
    {
        { "unknown dtype", """{"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}""", "dtype F16" },
        { "range past the data", """{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", "'w' spans bytes [0, 16)" },
        { "size not matching shape", """{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", "'w' of shape [3] needs 12 bytes" },
        { "overlap", """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"v":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", "overlaps" },
        { "negative offset", """{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}""", "'w' spans" },
        { "huge shape", """{"w":{"dtype":"F32","shape":[100000,100000,100000],"data_offsets":[0,8]}}""", "'w' of shape" },
        { "not json", """{"w": [1, 2""", "not valid JSON" },
        { "missing fields", """{"w":{"dtype":"F32"}}""", "'w' lacks" },
        { "string offsets", """{"w":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}}""", "'w' has data_offsets that are not two integers" },
        { "fractional dimension", """{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,8]}}""", "'w' has an invalid dimension" },
        { "duplicate name", """{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "'w' appears twice" },
        { "hole before a tensor", """{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}""", "data bytes [0, 4) belong to no tensor" },
        { "trailing bytes", """{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", "end at data byte 4, but 8 data bytes follow" },
        { "metadata not strings", """{"__metadata__":{"a":1},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", "__metadata__" },
        { "not an object", """[1, 2]""", "not a JSON object" },
    };

    [Theory]
    [MemberData(nameof(CorruptHeaders))]
    public void RejectsCorruptHeaders(string what, string header, string fragment)
    {
        string path = WriteRaw(header, new byte[8]);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.True(e.Message.Contains(fragment) && e.Message.Contains(path), $"{what}: the message '{e.Message}' lacks '{fragment}' or the path");
    }

    [Fact]
    public void RejectsInvalidUtf8InAName()
    {
        var header = Encoding.UTF8.GetBytes("""{"w?":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""");
        header[3] = 0xFF;
        string path = Path.Combine(directory, "utf8.safetensors");
        using (var stream = File.Create(path))
        {
            var prefix = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            stream.Write(prefix);
            stream.Write(header);
            stream.Write(new byte[8]);
        }
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains("UTF-8", e.Message);
        Assert.Contains(path, e.Message);
    }

    /// <summary>The sample's header ends in padding: a header length one short still parses, but the data then starts a byte early.</summary>
    [Fact]
    public void RejectsAHeaderLengthOneShort()
    {
        var bytes = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "samples", "reverse-digits", "model.safetensors"));
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, BinaryPrimitives.ReadUInt64LittleEndian(bytes) - 1);
        string path = Path.Combine(directory, "short-header.safetensors");
        File.WriteAllBytes(path, bytes);
        Assert.Contains("data bytes follow", Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path)).Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AcceptsAZeroSizeTensorInEitherOrder(bool zeroFirst)
    {
        const string empty = "\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[8,8]}";
        const string full = "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
        string path = WriteRaw("{" + (zeroFirst ? empty + "," + full : full + "," + empty) + "}", new byte[8]);
        var read = SafeTensors.Read(path);
        Assert.Equal([0, 3], read["z"].Shape);
        Assert.Empty(read["z"].Data);
        Assert.Equal([2], read["w"].Shape);
    }

    [Fact]
    public void RejectsHeaderLengthBeyondTheFileWithoutAllocatingIt()
    {
        string path = Path.Combine(directory, "huge.safetensors");
        var bytes = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, ulong.MaxValue / 2);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path));
        Assert.Contains("header claims", e.Message);
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Contains("shorter than", Assert.Throws<InvalidDataException>(() => SafeTensors.Read(path)).Message);
    }

    [Fact]
    public void ModelLoadingNamesMissingAndMisshapenTensors()
    {
        string sample = Path.Combine(AppContext.BaseDirectory, "fixtures", "postln_relu");
        var tensors = SafeTensors.Read(Path.Combine(sample, "model.safetensors")).ToDictionary();
        var config = TransformerConfig.Load(Path.Combine(sample, "config.json"));
        var device = TestDevices.Get("cpu");

        var missing = new Dictionary<string, HostTensor>(tensors);
        missing.Remove("decoder.layers.1.norm3.bias");
        var e = Assert.Throws<InvalidDataException>(() => new Transformer(new WeightSource(device, missing, "test"), config));
        Assert.Contains("'decoder.layers.1.norm3.bias'", e.Message);

        var misshapen = new Dictionary<string, HostTensor>(tensors)
        {
            ["encoder.layers.0.linear1.weight"] = new([config.DFeedForward, config.DModel + 1], new float[config.DFeedForward * (config.DModel + 1)]),
        };
        e = Assert.Throws<InvalidDataException>(() => new Transformer(new WeightSource(device, misshapen, "test"), config));
        Assert.Contains("'encoder.layers.0.linear1.weight' has shape [40, 25], expected [40, 24]", e.Message);

        Assert.Throws<InvalidDataException>(() => (config with { Heads = 5 }).Validate());
        Assert.Throws<InvalidDataException>(() => (config with { Activation = "swish" }).Validate());
    }

    private string WriteRaw(string header, byte[] data)
    {
        string path = Path.Combine(directory, Guid.NewGuid() + ".safetensors");
        var json = Encoding.UTF8.GetBytes(header);
        using var stream = File.Create(path);
        var prefix = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)json.Length);
        stream.Write(prefix);
        stream.Write(json);
        stream.Write(data);
        return path;
    }
}
