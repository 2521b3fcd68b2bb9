using System.Text.Json;
using GpuAttention.Model;
using GpuAttention.Runtime;

namespace GpuAttention.Tests;

/// <summary>
/// The model against PyTorch 1.13's nn.Transformer with identical weights (fixtures made by
/// tests/fixtures/generate.py): encoder memory, decoder output and logits within the fp32 tolerance (Numerics.AssertClose),
/// greedy tokens identical, cached decoding identical to uncached — on the managed CPU backend and on the ILGPU
/// kernels (the CPU accelerator).
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class ModelTests(ITestOutputHelper output)
{
    private static readonly string[] ModelDevices = ["cpu", "cpu-accelerator"];

    public static TheoryData<string, string> Fixtures()
    {
        var data = new TheoryData<string, string>();
        foreach (string device in ModelDevices)
        foreach (string fixture in new[] { "postln_relu", "preln_gelu", "postln_gelu_3layers" })
            data.Add(device, fixture);
        return data;
    }

    public static TheoryData<string> Devices() => new(ModelDevices);

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void MatchesPyTorch(string deviceName, string fixture)
    {
        string directory = Path.Combine(AppContext.BaseDirectory, "fixtures", fixture);
        var expected = Expected.Load(directory);
        using var model = Transformer.Load(TestDevices.Get(deviceName), directory);

        using var memory = model.Encode(expected.Src, expected.SrcLengths);
        Compare("memory", expected.Memory, expected.MemoryShape, memory);
        using var decoded = model.Decode(expected.Tgt, memory, expected.SrcLengths);
        Compare("decoder output", expected.DecoderOutput, expected.DecoderOutputShape, decoded);
        using var logits = model.Logits(decoded);
        Compare("logits", expected.Logits, expected.LogitsShape, logits);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void GreedyTokensMatchPyTorchWithAndWithoutCache(string deviceName, string fixture)
    {
        string directory = Path.Combine(AppContext.BaseDirectory, "fixtures", fixture);
        var expected = Expected.Load(directory);
        using var model = Transformer.Load(TestDevices.Get(deviceName), directory);
        var cached = Generation.Greedy(model, expected.Src, expected.SrcLengths, expected.GreedyMaxNewTokens, useCache: true);
        var uncached = Generation.Greedy(model, expected.Src, expected.SrcLengths, expected.GreedyMaxNewTokens, useCache: false);
        Assert.Equal(expected.Greedy, cached);
        Assert.Equal(expected.Greedy, uncached);
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void SampleReversesDigitsGreedilyAndBeamsFindLikelierSequences(string deviceName)
    {
        string directory = Path.Combine(AppContext.BaseDirectory, "samples", "reverse-digits");
        var expected = Expected.Load(directory);
        using var model = Transformer.Load(TestDevices.Get(deviceName), directory);
        var greedy = Generation.Greedy(model, expected.Src, expected.SrcLengths, expected.GreedyMaxNewTokens);
        Assert.Equal(expected.Greedy, greedy);
        for (int row = 0; row < 2; row++)
        {
            var source = expected.Src[row][..expected.SrcLengths[row]];
            Assert.Equal(greedy[row], Generation.Beam(model, source, beamWidth: 1, expected.GreedyMaxNewTokens));
            var beam = Generation.Beam(model, source, beamWidth: 3, expected.GreedyMaxNewTokens, lengthPenalty: 0f);
            double beamScore = LogProbability(model, source, beam), greedyScore = LogProbability(model, source, greedy[row]);
            output.WriteLine($"row {row}: beam {string.Join(",", beam)} log p = {beamScore:F4}; greedy log p = {greedyScore:F4}");
            Assert.True(beamScore >= greedyScore - 1e-4, $"beam {beamScore} < greedy {greedyScore}");
        }
    }

    public static TheoryData<string, string> HalfPrecisionFixtures()
    {
        var data = new TheoryData<string, string>();
        foreach (string fixture in new[] { "postln_relu", "preln_gelu", "postln_gelu_3layers" })
        foreach (string format in new[] { "bf16", "f16" })
            data.Add(fixture, format);
        return data;
    }

    /// <summary>
    /// The model loaded in BF16 or F16 (Linear weights and the operands of every product and of attention rounded to it,
    /// fp32 accumulation) against PyTorch's fp32 logits. The tolerance is the format's rounding budget: a product with both
    /// operands rounded is off by at most 2u relative per term (u = 2⁻⁹ for bf16, 2⁻¹² for f16), and a logit's longest path
    /// holds 4 such rounded stages per encoder layer (Q/K/V projections, attention, output projection, two feed-forward
    /// products counted as the stages that feed each other), 6 per decoder layer (two attentions) and the generator; the
    /// budget is 2u · stages · 2 · max|logit|, the last 2 for terms up to twice the logits' magnitude.
    /// </summary>
    [Theory]
    [MemberData(nameof(HalfPrecisionFixtures))]
    public void HalfPrecisionModelStaysWithinItsRoundingBudgetOfPyTorch(string fixture, string format)
    {
        string directory = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "fixtures", fixture));
        var expected = Expected.Load(directory);
        var dtype = format == "bf16" ? DType.BF16 : DType.F16;
        using var model = Transformer.Load(TestDevices.Get("cpu"), directory, dtype);
        using var memory = model.Encode(expected.Src, expected.SrcLengths);
        using var decoded = model.Decode(expected.Tgt, memory, expected.SrcLengths);
        using var logits = model.Logits(decoded);
        float[] got = logits.ToArray();
        double largest = expected.Logits.Max(x => Math.Abs((double)x)), worst = 0;
        for (int i = 0; i < got.Length; i++)
            worst = Math.Max(worst, Math.Abs(got[i] - expected.Logits[i]));
        double unit = format == "bf16" ? 1.0 / 512 : 1.0 / 4096;
        int stages = 4 * model.Config.EncoderLayers + 6 * model.Config.DecoderLayers + 1;
        double tolerance = 2 * unit * stages * 2 * largest;
        output.WriteLine($"{fixture} {format}: max |logit − PyTorch| {worst:E3}, tolerance {tolerance:E3} (max |logit| {largest:F3})");
        Assert.True(worst <= tolerance, $"{fixture} {format}: max |logit − PyTorch| {worst:E3} > {tolerance:E3}");
    }

    /// <summary>The sample decodes the same tokens in BF16 and F16 as PyTorch's fp32 model did, with and without the cache.</summary>
    [Theory]
    [InlineData("bf16")]
    [InlineData("f16")]
    public void HalfPrecisionSampleDecodesTheSameTokens(string format)
    {
        string directory = Path.Combine(AppContext.BaseDirectory, "samples", "reverse-digits");
        var expected = Expected.Load(directory);
        using var model = Transformer.Load(TestDevices.Get("cpu"), directory, format == "bf16" ? DType.BF16 : DType.F16);
        Assert.Equal(expected.Greedy, Generation.Greedy(model, expected.Src, expected.SrcLengths, expected.GreedyMaxNewTokens, useCache: true));
        Assert.Equal(expected.Greedy, Generation.Greedy(model, expected.Src, expected.SrcLengths, expected.GreedyMaxNewTokens, useCache: false));
    }

    /// <summary>log p(tokens | source) by teacher forcing through the uncached decoder: independent of the beam's own bookkeeping.</summary>
    private static double LogProbability(Transformer model, int[] source, int[] tokens)
    {
        using var memory = model.Encode([source], [source.Length]);
        int[] input = [model.Config.BosId, .. tokens[..^1]];
        using var decoded = model.Decode([input], memory, [source.Length]);
        using var logits = model.Logits(decoded);
        var values = logits.ToArray();
        int vocab = model.Config.TargetVocabulary;
        double total = 0;
        for (int t = 0; t < tokens.Length; t++)
        {
            var row = values.AsSpan(t * vocab, vocab).ToArray();
            double max = row.Max();
            double logSum = max + Math.Log(row.Sum(v => Math.Exp(v - max)));
            total += row[tokens[t]] - logSum;
        }
        return total;
    }

    private void Compare(string what, float[] want, int[] shape, DeviceTensor got)
    {
        Assert.Equal(shape, got.Shape);
        var values = got.ToArray();
        double maxError = want.Zip(values, (w, g) => Math.Abs((double)w - g)).Max();
        output.WriteLine($"{what}: max |ours − PyTorch| = {maxError:E2}");
        Numerics.AssertClose(want.Select(w => (double)w).ToArray(), values, what: what);
    }

    private sealed record Expected(
        int[][] Src, int[] SrcLengths, int[][] Tgt,
        float[] Memory, int[] MemoryShape, float[] DecoderOutput, int[] DecoderOutputShape,
        float[] Logits, int[] LogitsShape, int[][] Greedy, int GreedyMaxNewTokens)
    {
        public static Expected Load(string directory)
        {
            var options = new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
            return JsonSerializer.Deserialize<Expected>(File.ReadAllText(Path.Combine(directory, "expected.json")), options)!;
        }
    }
}
