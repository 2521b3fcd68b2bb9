using System.CommandLine;
using GpuAttention.Runtime;

namespace GpuAttention.Cli;

/// <summary>The options every command opens its device by: <c>--device</c> and <c>--threads</c>, both recursive.</summary>
internal sealed class DeviceOptions
{
    public Option<string?> Device { get; } = new("--device")
    {
        Description = "cuda, opencl, cpu (the managed SIMD backend) or cpu-accelerator (ILGPU's simulator; default: GPUATTENTION_DEVICE, else CUDA > OpenCL GPU > cpu)",
        Recursive = true,
    };

    public Option<int?> Threads { get; } = new("--threads")
    {
        Description = $"Threads the managed CPU backend (cpu) spreads each op over, 1..{ComputeDevice.MaxThreads} (default: one per logical processor)",
        Recursive = true,
    };

    /// <summary>The device the parsed options name; --threads with any device but the managed CPU backend is a usage mistake.</summary>
    public ComputeDevice Open(ParseResult result)
    {
        var kind = DeviceChoice.Parse(result.GetValue(Device));
        if (result.GetValue(Threads) is not { } threads)
            return ComputeDevice.Create(kind);
        if (threads is < 1 or > ComputeDevice.MaxThreads)
            throw new UsageException($"--threads must be in 1..{ComputeDevice.MaxThreads}, got {threads}.");
        var device = ComputeDevice.Create(kind);
        if (device.Kind == DeviceKind.ManagedCpu)
        {
            device.Dispose();
            return ComputeDevice.CreateManagedCpu(threads);
        }
        string chosen = device.ToString();
        device.Dispose();
        throw new UsageException($"--threads applies to the managed CPU backend (--device cpu), not to {chosen}.");
    }
}

/// <summary>Turns the --device option (or GPUATTENTION_DEVICE) into a <see cref="ComputeDevice"/>.</summary>
internal static class DeviceChoice
{

    /// <summary>The named kind; a name that is no kind (on the command line or in the environment) is a usage mistake.</summary>
    public static DeviceKind? Parse(string? name)
    {
        try
        {
            return ComputeDevice.ParseKind(name, "--device")
                ?? ComputeDevice.ParseKind(Environment.GetEnvironmentVariable(ComputeDevice.EnvironmentVariable), ComputeDevice.EnvironmentVariable);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
    }
}
