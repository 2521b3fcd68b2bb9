using GpuAttention.Model;
using GpuAttention.Ops;
using GpuAttention.Runtime;
using GpuAttention.Weights;

namespace GpuAttention.Tests;

/// <summary>
/// The model API beyond token-in, logits-out: config.json is strict, weight files must match the config, a failed load
/// frees what it built, and the encoder and decoder can be run from already-embedded tensors with caller-chosen masks.
/// Expectations come from the same model run another way (by tokens, or one sequence at a time), never from a stored
/// copy of our own output.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class ModelApiTests : IDisposable
{
    private static readonly string Fixture = Path.Combine(AppContext.BaseDirectory, "fixtures", "postln_relu");
    private readonly string directory = Directory.CreateTempSubdirectory("model-api-tests").FullName;

    private static ComputeDevice Device => TestDevices.Get("cpu");

    public void Dispose() => Directory.Delete(directory, recursive: true);

    [Theory]
    [InlineData("nhead", "2")]
    [InlineData("norm_frist", "true")]
    [InlineData("pad_id", "0")]
    public void UnknownConfigKeysAreErrorsNamingTheKey(string key, string value)
    {
        string folder = CopyFixture();
        string path = Path.Combine(folder, "config.json");
        File.WriteAllText(path, File.ReadAllText(path).TrimEnd().TrimEnd('}') + $", \"{key}\": {value}}}");
        var e = Assert.Throws<InvalidDataException>(() => Transformer.Load(Device, folder));
        Assert.Contains($"'{key}'", e.Message);
    }

    [Fact]
    public void TensorsTheConfigLeavesUnusedAreAnErrorAndTheFailedLoadFreesItsMemory()
    {
        string folder = CopyFixture();
        string path = Path.Combine(folder, "config.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"encoder_layers\": 2", "\"encoder_layers\": 1"));
        long before = Device.BytesAllocated;
        var e = Assert.Throws<InvalidDataException>(() => Transformer.Load(Device, folder));
        Assert.Contains("encoder.layers.1.", e.Message);
        Assert.Equal(before, Device.BytesAllocated);

        var tensors = SafeTensors.Read(Path.Combine(Fixture, "model.safetensors")).ToDictionary();
        tensors.Remove("generator.bias");
        var config = TransformerConfig.Load(Path.Combine(Fixture, "config.json"));
        Assert.Throws<InvalidDataException>(() => new Transformer(new WeightSource(Device, tensors, "test"), config));
        Assert.Equal(before, Device.BytesAllocated);
    }

    [Fact]
    public void EncodingAndDecodingEmbeddedTensorsEqualsTheTokenPath()
    {
        using var model = Transformer.Load(Device, Fixture);
        int[][] source = [[3, 4, 5, 6, 0], [7, 8, 9, 0, 0]];
        int[] lengths = [4, 3];
        int[][] target = [[1, 5, 6], [1, 7, 2]];
        using var byTokens = model.Encode(source, lengths);
        using var embeddedSource = model.SourceEmbeddings.Forward(source);
        using var byTensor = model.Encode(embeddedSource, lengths);
        Assert.Equal(byTokens.ToArray(), byTensor.ToArray());

        using var decodedByTokens = model.Decode(target, byTokens, lengths);
        using var embeddedTarget = model.TargetEmbeddings.Forward(target);
        using var decodedByTensor = model.Decode(embeddedTarget, byTokens, lengths);
        Assert.Equal(decodedByTokens.ToArray(), decodedByTensor.ToArray());
        Assert.Equal(embeddedSource.Shape, [2, 5, model.Config.DModel]);
    }

    [Fact]
    public void TargetPaddingHidesPaddedPositionsFromABidirectionalDecoder()
    {
        using var model = Transformer.Load(Device, Fixture);
        int[][] source = [[3, 4, 5], [6, 7, 8]];
        int[] sourceLengths = [3, 3];
        using var memory = model.Encode(source, sourceLengths);
        // Row 0 has 2 real target tokens and 2 of padding; without a causal mask the padding would reach every position.
        using var padded = model.Decode([[1, 5, 9, 9], [1, 6, 7, 8]], memory, sourceLengths, AttentionMask.None, targetLengths: [2, 4]);
        using var memory0 = model.Encode([source[0]], [3]);
        using var alone = model.Decode([[1, 5]], memory0, [3], AttentionMask.None);
        int d = model.Config.DModel;
        var want = alone.ToArray().Select(v => (double)v).ToArray();
        Numerics.AssertClose(want, padded.ToArray().AsSpan(0, 2 * d).ToArray(), atol: 1e-5, what: "padded row 0");
        // The unmasked padding changes them, so the check above can fail.
        using var unmasked = model.Decode([[1, 5, 9, 9], [1, 6, 7, 8]], memory, sourceLengths, AttentionMask.None);
        Assert.NotEqual(padded.ToArray().AsSpan(0, 2 * d).ToArray(), unmasked.ToArray().AsSpan(0, 2 * d).ToArray());
    }

    [Fact]
    public void PositionalNoneAndAnEmbeddingScaleAreConfigured()
    {
        string folder = CopyFixture();
        string path = Path.Combine(folder, "config.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"positional\": \"sinusoidal\"", "\"positional\": \"none\", \"embedding_scale\": 0.5"));
        using var model = Transformer.Load(Device, folder);
        int d = model.Config.DModel;
        var table = SafeTensors.Read(Path.Combine(Fixture, "model.safetensors"))["src_embed.weight"].Data;
        using var embedded = model.SourceEmbeddings.Forward([[4, 2]]);
        var want = table.AsSpan(4 * d, d).ToArray().Concat(table.AsSpan(2 * d, d).ToArray()).Select(v => 0.5 * v).ToArray();
        Numerics.AssertClose(want, embedded.ToArray(), atol: 0, rtol: 0);
        Assert.Throws<InvalidDataException>(() => (model.Config with { Positional = "rotary" }).Validate());
    }

    [Fact]
    public void DecodingStepsOutsideTheCacheAreRejected()
    {
        using var model = Transformer.Load(Device, Fixture);
        using var memory = model.Encode([[3, 4]], [2]);
        var caches = model.CreateCaches(memory, 4);
        try
        {
            foreach (int position in new[] { -1, 4, int.MaxValue })
            {
                var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.DecodeStep([1], position, caches, [2]));
                Assert.Equal("position", e.ParamName);
            }
        }
        finally
        {
            foreach (var cache in caches)
                cache.Dispose();
        }
    }

    private string CopyFixture()
    {
        string folder = Path.Combine(directory, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        foreach (string file in Directory.GetFiles(Fixture))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        return folder;
    }
}
