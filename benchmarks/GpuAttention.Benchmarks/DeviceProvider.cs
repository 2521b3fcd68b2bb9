using GpuAttention.Cases;
using GpuAttention.Runtime;

namespace GpuAttention.Benchmarks;

/// <summary>
/// The one <see cref="ComputeDevice"/> of this process, opened on first use: the kind named by
/// <c>GPUATTENTION_DEVICE</c>, else CUDA, then an OpenCL GPU, then the managed CPU backend. The BenchmarkDotNet host
/// process opens it too, because the cases (the <c>[ParamsSource]</c>s) depend on its kind.
/// </summary>
public static class DeviceProvider
{
    private static readonly Lazy<ComputeDevice> Instance = new(() => ComputeDevice.Create());

    /// <summary>The device every benchmark runs on.</summary>
    public static ComputeDevice Device => Instance.Value;

    /// <summary>Overrides the choice of sizes: <c>small</c> or <c>full</c>.</summary>
    public const string SizesVariable = "GPUATTENTION_BENCH_SIZES";

    /// <summary>
    /// True for the small problem sizes: <see cref="Catalog.SmallSizesFor"/> the device unless <see cref="SizesVariable"/>
    /// says otherwise.
    /// </summary>
    public static bool SmallSizes => Environment.GetEnvironmentVariable(SizesVariable)?.Trim().ToLowerInvariant() switch
    {
        null or "" => Catalog.SmallSizesFor(Device),
        "small" => true,
        "full" => false,
        var other => throw new ArgumentException($"{SizesVariable}='{other}' is neither 'small' nor 'full'.", SizesVariable),
    };
}
