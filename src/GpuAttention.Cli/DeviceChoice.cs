using GpuAttention.Runtime;

namespace GpuAttention.Cli;

/// <summary>Turns the --device option into a <see cref="ComputeDevice"/>.</summary>
internal static class DeviceChoice
{
    public static ComputeDevice Open(string? name) => ComputeDevice.Create(Parse(name));

    public static DeviceKind? Parse(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        null or "" => null,
        "cuda" => DeviceKind.Cuda,
        "opencl" => DeviceKind.OpenCL,
        "cpu" => DeviceKind.Cpu,
        _ => throw new ArgumentException($"--device '{name}' names no device kind; expected cuda, opencl or cpu.", "--device"),
    };
}
