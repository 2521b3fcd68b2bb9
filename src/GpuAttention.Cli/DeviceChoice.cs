using GpuAttention.Runtime;

namespace GpuAttention.Cli;

/// <summary>Turns the --device option (or GPUATTENTION_DEVICE) into a <see cref="ComputeDevice"/>.</summary>
internal static class DeviceChoice
{
    public static ComputeDevice Open(string? name) => ComputeDevice.Create(Parse(name));

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
