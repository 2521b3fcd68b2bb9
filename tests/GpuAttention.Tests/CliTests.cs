using GpuAttention.Cli;

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
        { ["devices", "--device", "bogus"], 2, "--device='bogus' names no device kind" },
        { ["bench", "--seconds", "x"], 2, "x" },
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
