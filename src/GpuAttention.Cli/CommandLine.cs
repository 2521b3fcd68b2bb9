using System.CommandLine;

namespace GpuAttention.Cli;

/// <summary>The <c>gpuattention</c> command: its options and subcommands, and how it ends (see <see cref="Failures"/>).</summary>
internal static class CommandLine
{
    /// <summary>Parses and runs <paramref name="args"/>; problems go to <paramref name="error"/> as one line. Returns the exit code.</summary>
    public static int Run(string[] args, TextWriter error)
    {
        var device = new DeviceOptions();
        var verboseOption = new Option<bool>("--verbose") { Description = "Print the full exception (with its stack trace) when a command fails", Recursive = true };
        var root = new RootCommand("GpuAttention: ILGPU attention kernels and a Transformer built on them")
        {
            device.Device,
            device.Threads,
            verboseOption,
            DevicesCommand.Create(device),
            GenerateCommand.Create(device),
            EmbedCommand.Create(device),
            BenchCommand.Create(device),
        };
        return Failures.Run(root.Parse(args), verboseOption, error);
    }
}
