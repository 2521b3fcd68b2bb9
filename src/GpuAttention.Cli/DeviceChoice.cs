using GpuAttention.Runtime;

namespace GpuAttention.Cli;

/// <summary>Turns the --device option into a <see cref="ComputeDevice"/>.</summary>
internal static class DeviceChoice
{
    public static ComputeDevice Open(string? name) => ComputeDevice.Create(Parse(name));

    public static DeviceKind? Parse(string? name) => ComputeDevice.ParseKind(name, "--device");
}
