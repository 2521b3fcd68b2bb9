using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using GpuAttention.Benchmarks;

string artifacts = ArtifactsFolder();

// `charts [results folder] [output folder]`: the PNGs from the points files of earlier runs, nothing is measured.
if (args.FirstOrDefault() == "charts")
{
    string results = args.ElementAtOrDefault(1) ?? Path.Combine(artifacts, "results");
    string output = args.ElementAtOrDefault(2) ?? Path.Combine(Path.GetDirectoryName(artifacts)!, "benchmarks", "charts");
    foreach (string file in Charts.Draw(results, output))
        Console.WriteLine(file);
    return;
}

// Our switches; everything else goes to BenchmarkDotNet (--filter, --list, --join, --exporters, …).
//   --inprocess  run in this process (InProcessEmitToolchain): no .NET SDK needed, e.g. a self-contained app on a GPU host
//   --quick      a ShortRun-like job: 1 launch, 1 warmup, 3 iterations
bool inProcess = args.Any(a => a.Equals("--inprocess", StringComparison.OrdinalIgnoreCase));
bool quick = args.Any(a => a.Equals("--quick", StringComparison.OrdinalIgnoreCase));
string[] benchmarkArgs = args
    .Where(a => !a.Equals("--inprocess", StringComparison.OrdinalIgnoreCase) && !a.Equals("--quick", StringComparison.OrdinalIgnoreCase))
    .ToArray();

var job = quick ? Job.Default.WithLaunchCount(1).WithWarmupCount(1).WithIterationCount(3).WithId("Quick") : Job.Default;
if (inProcess)
    job = job.WithToolchain(InProcessEmitToolchain.Instance);

Metrics.UseFolder(Path.Combine(artifacts, "device-memory"));
Console.WriteLine($"// GpuAttention benchmarks on {DeviceProvider.Device} ({(DeviceProvider.SmallSizes ? "small sizes" : "full sizes")})");

// ORT's CPU provider, or our managed CPU device, for the ONNX Runtime comparisons; the benchmark device otherwise.
static string Engine(string method) => method is nameof(OrtComparison.OnnxRuntime) or "Ours" or "OursKvCache"
    ? OrtComparison.Engine(method)
    : DeviceProvider.Device.ToString();

var config = ManualConfig.Create(DefaultConfig.Instance)
    .WithArtifactsPath(artifacts)
    .AddJob(job.AsDefault())
    .AddColumn(new TagColumn("Device", Engine))
    .AddExporter(new PointsExporter(Engine))
    .WithSummaryStyle(SummaryStyle.Default.WithMaxParameterColumnWidth(40));
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(benchmarkArgs, config);

// BenchmarkDotNet.Artifacts at the repository root (ignored by its .gitignore) when run inside the repository,
// else in the working directory (BenchmarkDotNet's default).
static string ArtifactsFolder()
{
    for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
    {
        if (File.Exists(Path.Combine(dir.FullName, "GpuAttention.sln")))
            return Path.Combine(dir.FullName, "BenchmarkDotNet.Artifacts");
    }
    return Path.Combine(Directory.GetCurrentDirectory(), "BenchmarkDotNet.Artifacts");
}
