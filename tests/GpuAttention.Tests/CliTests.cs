using System.Text.Json;
using GpuAttention.Cli;
using GpuAttention.Weights;

namespace GpuAttention.Tests;

/// <summary>
/// The command line as a careless user meets it: every mistake ends in one line on stderr saying what was wrong, exit code
/// 2 for a usage mistake and 1 for a failure, and a stack trace only with --verbose.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class CliTests : IDisposable
{
    private static readonly string Sample = Path.Combine(AppContext.BaseDirectory, "samples", "reverse-digits");
    private readonly string folder = Directory.CreateTempSubdirectory("cli-tests").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    public static TheoryData<string[], int, string> Mistakes() => new()
    {
        { ["generate", "--model", Sample, "--device", "cpu", "12x"], 2, "Token 'x' is not in the model's vocabulary" },
        { ["generate", "--model", Sample, "--device", "cpu", " "], 2, "The input is empty" },
        { ["generate", "--model", Sample, "--beam", "0", "123"], 2, "--beam must be in 1..256" },
        { ["generate", "--model", Sample, "--beam", "1000000", "123"], 2, "--beam must be in 1..256" },
        { ["generate", "--model", Sample, "--max-tokens", "64", "--device", "cpu", "123"], 2, "--max-tokens must be below the model's max_len 64" },
        { ["generate", "--model", Sample, "--frob", "123", "456"], 2, "--frob" },
        { ["generate", "--model", "/nonexistent/model", "123"], 2, "--model: no directory" },
        { ["generate", "--model", Sample, "--dtype", "fp8", "123"], 2, "--dtype must be f32, bf16 or f16, got 'fp8'" },
        { ["embed", "--model", Sample, "--dtype", "bf17", "a text"], 2, "--dtype must be f32, bf16 or f16, got 'bf17'" },
        { ["devices", "--device", "bogus"], 2, "--device='bogus' names no device kind" },
        { ["devices", "--device", "cpu", "--threads", "0"], 2, "--threads must be in 1..1024, got 0" },
        { ["devices", "--device", "cpu-accelerator", "--threads", "2"], 2, "--threads applies to the managed CPU backend (--device cpu), not to" },
        { ["bench", "--seconds", "x"], 2, "x" },
        { ["bench", "--device", "cpu", "--with-tensors"], 2, "--with-tensors writes into the --save folder" },
        { ["bench", "--device", "cpu", "--filter", "no-such-case"], 2, "No case matches --filter 'no-such-case'" },
        { ["frobnicate"], 2, "frobnicate" },
    };

    [Theory]
    [MemberData(nameof(Mistakes))]
    public void MistakesEndInOneLineAndAUsageExitCode(string[] args, int exitCode, string fragment) =>
        AssertOneLine(args, exitCode, fragment);

    [Fact]
    public void ABrokenVocabularyIsAFailureNamingTheFile()
    {
        foreach (string file in Directory.GetFiles(Sample))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        File.WriteAllText(Path.Combine(folder, "vocab.json"), "{\"tokens\": 3}");
        AssertOneLine(["generate", "--model", folder, "--device", "cpu", "123"], 1, Path.Combine(folder, "vocab.json"));
    }

    [Fact]
    public void ABogusDeviceInTheEnvironmentIsAUsageMistake()
    {
        string? saved = Environment.GetEnvironmentVariable("GPUATTENTION_DEVICE");
        Environment.SetEnvironmentVariable("GPUATTENTION_DEVICE", "bogus");
        try
        {
            AssertOneLine(["devices"], 2, "GPUATTENTION_DEVICE='bogus' names no device kind");
        }
        finally
        {
            Environment.SetEnvironmentVariable("GPUATTENTION_DEVICE", saved);
        }
    }

    [Fact]
    public void VerboseShowsTheStackTraceAndGoodInputSucceeds()
    {
        var error = new StringWriter();
        Assert.Equal(2, CommandLine.Run(["generate", "--model", Sample, "--device", "cpu", "--verbose", "12x"], error));
        Assert.Contains("   at ", error.ToString());
        error = new StringWriter();
        Assert.Equal(0, CommandLine.Run(["generate", "--model", Sample, "--device", "cpu", "123"], error));
        Assert.Equal("", error.ToString());
        Assert.Equal(0, CommandLine.Run(["generate", "--model", Sample, "--device", "cpu", "--dtype", "bf16", "123"], error));
        Assert.Equal("", error.ToString());
        Assert.Equal(0, CommandLine.Run(["generate", "--model", Sample, "--device", "cpu", "--threads", "1", "123"], error));
        Assert.Equal("", error.ToString());
    }

    /// <summary>
    /// What tools/gpu/torch_compare.py reads: results.json names the case, its problem and its tensor file, and the file's
    /// output is the product of its operands (recomputed here in double precision).
    /// </summary>
    [Fact]
    public void BenchSavesResultsAndTheTensorsOfEachCase()
    {
        var error = new StringWriter();
        int code = CommandLine.Run(["bench", "--device", "cpu", "--seconds", "0.01", "--filter", "matmul 256x256x256", "--save", folder, "--with-tensors"], error);
        Assert.True(code == 0, error.ToString());

        using var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "results.json")));
        var entry = Assert.Single(results.RootElement.GetProperty("cases").EnumerateArray());
        Assert.Equal("matmul matmul 256x256x256", entry.GetProperty("name").GetString());
        Assert.True(entry.GetProperty("passed").GetBoolean());
        Assert.True(entry.GetProperty("ms").GetDouble() > 0);
        var problem = entry.GetProperty("problem");
        Assert.Equal("matmul", problem.GetProperty("op").GetString());
        Assert.Equal(256, problem.GetProperty("k").GetInt32());
        Assert.False(problem.GetProperty("transposeB").GetBoolean());

        var tensors = SafeTensors.Read(Path.Combine(folder, entry.GetProperty("tensors").GetString()!));
        Assert.Equal(["a", "b", "output"], tensors.Keys.Order());
        var (a, b, c) = (tensors["a"].Data, tensors["b"].Data, tensors["output"].Data);
        const int n = 256;
        for (int i = 0; i < n; i += 37)
        for (int j = 0; j < n; j += 41)
        {
            double want = 0;
            for (int p = 0; p < n; p++)
                want += (double)a[i * n + p] * b[p * n + j];
            Assert.True(Math.Abs(c[i * n + j] - want) <= 1e-4 + 1e-4 * Math.Abs(want), $"output[{i}, {j}] = {c[i * n + j]}, want {want}");
        }
    }

    private static void AssertOneLine(string[] args, int exitCode, string fragment)
    {
        var error = new StringWriter();
        int code = CommandLine.Run(args, error);
        string text = error.ToString();
        Assert.True(code == exitCode, $"exit code {code}, expected {exitCode}; stderr: {text}");
        Assert.Single(text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(fragment, text);
        Assert.DoesNotContain("   at ", text);
        Assert.DoesNotContain("Unhandled exception", text);
    }
}
