using GpuAttention.Backends.Ilgpu;
using GpuAttention.Runtime;

namespace GpuAttention.Tests;

/// <summary>
/// One device per kind present, opened once for the whole test run (a context costs ~100 ms and every
/// kernel compiles once per accelerator). Kernel tests are theories over <see cref="All"/>: the managed CPU backend
/// and ILGPU's CPU accelerator always, CUDA and OpenCL too when present.
/// </summary>
public static class TestDevices
{
    private static readonly Lazy<Dictionary<string, ComputeDevice>> Devices = new(Open);

    /// <summary>The CPU accelerator running the GPU launch profile: the production launch shapes, checked without a GPU.</summary>
    private static readonly Lazy<ComputeDevice> CpuWithGpuProfile = new(() => ComputeDevice.Create(DeviceKind.CpuAccelerator, LaunchProfile.Gpu));

    /// <summary>The CPU accelerator with the tensor-core kernels switched on (one warp per group keeps barriers cheap).</summary>
    private static readonly Lazy<ComputeDevice> CpuAcceleratorTensorCores =
        new(() => ComputeDevice.Create(DeviceKind.CpuAccelerator, LaunchProfile.CpuAccelerator with { TensorCoreWarps = 1 }));

    /// <summary>OpenCL (PoCL in CI) with the tensor-core kernels switched on: two warps per group.</summary>
    private static readonly Lazy<ComputeDevice> OpenCLTensorCores =
        new(() => ComputeDevice.Create(DeviceKind.OpenCL, LaunchProfile.OpenCLCpu with { TensorCoreWarps = 2 }));

    /// <summary>Names of the devices that run 16-bit attention on the tensor-core kernel (CUDA's mma, the portable bodies elsewhere).</summary>
    public const string CpuAcceleratorTensorCoreName = "cpu-accelerator-tensor-cores", OpenCLTensorCoreName = "opencl-tensor-cores";

    /// <summary>
    /// Every device that runs the tensor-core kernels: CUDA when present, the CPU accelerator and OpenCL with them switched
    /// on, and the CPU accelerator with the GPU launch profile (four warps, as on CUDA).
    /// </summary>
    public static IReadOnlyList<string> TensorCoreNames =>
    [
        .. Names.Contains("cuda") ? ["cuda"] : Array.Empty<string>(),
        CpuAcceleratorTensorCoreName,
        .. Names.Contains("opencl") ? [OpenCLTensorCoreName] : Array.Empty<string>(),
        GpuProfileOnCpu,
    ];

    /// <summary>The device kinds present, by <see cref="ComputeDevice.KindName"/> ("cpu", "cpu-accelerator", "opencl", "cuda").</summary>
    public static IReadOnlyCollection<string> Names => Devices.Value.Keys;

    public static TheoryData<string> All
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (var name in Names)
                data.Add(name);
            return data;
        }
    }

    public static ComputeDevice Get(string name) => name switch
    {
        GpuProfileOnCpu => CpuWithGpuProfile.Value,
        CpuAcceleratorTensorCoreName => CpuAcceleratorTensorCores.Value,
        OpenCLTensorCoreName => OpenCLTensorCores.Value,
        _ => Devices.Value[name],
    };

    /// <summary>Name of the CPU accelerator configured with <see cref="LaunchProfile.Gpu"/>.</summary>
    public const string GpuProfileOnCpu = "cpu-gpu-profile";

    private static Dictionary<string, ComputeDevice> Open()
    {
        var kinds = ComputeDevice.ListDevices().Select(d => d.Kind).Distinct();
        return kinds.ToDictionary(ComputeDevice.KindName, k => ComputeDevice.Create(k));
    }
}

/// <summary>Accelerator tests share devices and must not run in parallel (extra threads make barriers dearer).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AcceleratorCollection
{
    public const string Name = "accelerator";
}

/// <summary>
/// CI names the device kinds it provides in GPUATTENTION_REQUIRE_DEVICES (e.g. "cpu,opencl"); a missing one
/// fails the run instead of silently testing fewer backends.
/// </summary>
public sealed class RequiredDevicesTests
{
    [Fact]
    public void EveryRequiredDeviceKindIsPresent()
    {
        string required = Environment.GetEnvironmentVariable("GPUATTENTION_REQUIRE_DEVICES") ?? "cpu";
        var present = TestDevices.Names.ToHashSet();
        foreach (string kind in required.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            Assert.True(present.Contains(kind), $"GPUATTENTION_REQUIRE_DEVICES names '{kind}', but the devices present are: {string.Join(", ", present)}.");
    }
}
