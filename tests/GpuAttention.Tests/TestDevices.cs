using GpuAttention.Runtime;

namespace GpuAttention.Tests;

/// <summary>
/// One device per kind ILGPU sees, opened once for the whole test run (a context costs ~100 ms and every
/// kernel compiles once per accelerator). Kernel tests are theories over <see cref="All"/>: the CPU accelerator
/// always, CUDA and OpenCL too when present.
/// </summary>
public static class TestDevices
{
    private static readonly Lazy<Dictionary<string, ComputeDevice>> Devices = new(Open);

    /// <summary>The CPU accelerator running the GPU launch profile: the production launch shapes, checked without a GPU.</summary>
    private static readonly Lazy<ComputeDevice> CpuWithGpuProfile = new(() => ComputeDevice.Create(DeviceKind.Cpu, LaunchProfile.Gpu));

    public static TheoryData<string> All
    {
        get
        {
            var data = new TheoryData<string>();
            foreach (var name in Devices.Value.Keys)
                data.Add(name);
            return data;
        }
    }

    public static ComputeDevice Get(string name) => name == GpuProfileOnCpu ? CpuWithGpuProfile.Value : Devices.Value[name];

    /// <summary>Name of the CPU accelerator configured with <see cref="LaunchProfile.Gpu"/>.</summary>
    public const string GpuProfileOnCpu = "cpu-gpu-profile";

    private static Dictionary<string, ComputeDevice> Open()
    {
        var kinds = ComputeDevice.ListDevices().Select(d => d.Kind).Distinct();
        return kinds.ToDictionary(k => k.ToString().ToLowerInvariant(), k => ComputeDevice.Create(k));
    }
}

/// <summary>Accelerator tests share devices and must not run in parallel (extra threads make barriers dearer).</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AcceleratorCollection
{
    public const string Name = "accelerator";
}
