using System.Globalization;

namespace GpuAttention.Benchmarks;

/// <summary>
/// Hands values measured inside a benchmark process (its <c>[GlobalSetup]</c>) to the columns, which run in
/// the BenchmarkDotNet host process: one small text file per key in the folder named by
/// <see cref="EnvironmentVariable"/>, which the host sets and its benchmark processes inherit.
/// </summary>
public static class Metrics
{
    public const string EnvironmentVariable = "GPUATTENTION_BENCH_METRICS";

    private static string Folder => Environment.GetEnvironmentVariable(EnvironmentVariable)
        ?? Path.Combine(Path.GetTempPath(), "GpuAttention.Benchmarks.metrics");

    /// <summary>Called by the host before the run: starts from an empty folder.</summary>
    public static void UseFolder(string folder)
    {
        folder = Path.GetFullPath(folder);
        if (Directory.Exists(folder))
            Directory.Delete(folder, recursive: true);
        Environment.SetEnvironmentVariable(EnvironmentVariable, folder);
    }

    public static void Write(string key, long value)
    {
        Directory.CreateDirectory(Folder);
        File.WriteAllText(Path.Combine(Folder, key + ".txt"), value.ToString(CultureInfo.InvariantCulture));
    }

    public static long? Read(string key)
    {
        string path = Path.Combine(Folder, key + ".txt");
        return File.Exists(path) ? long.Parse(File.ReadAllText(path), CultureInfo.InvariantCulture) : null;
    }
}
