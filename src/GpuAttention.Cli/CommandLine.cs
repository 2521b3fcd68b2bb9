using System.CommandLine;

namespace GpuAttention.Cli;

/// <summary>The <c>gpuattention</c> command: its options and subcommands, and how it ends (see <see cref="Failures"/>).</summary>
internal static class CommandLine
{
    /// <summary>Parses and runs <paramref name="args"/>; problems go to <paramref name="error"/> as one line. Returns the exit code.</summary>
    public static int Run(string[] args, TextWriter error)
    {
        var deviceOption = new Option<string?>("--device")
        {
            Description = "cuda, opencl, cpu (the managed SIMD backend) or cpu-accelerator (ILGPU's simulator; default: GPUATTENTION_DEVICE, else CUDA > OpenCL GPU > cpu)",
            Recursive = true,
        };
        var verboseOption = new Option<bool>("--verbose") { Description = "Print the full exception (with its stack trace) when a command fails", Recursive = true };
        var root = new RootCommand("GpuAttention: ILGPU attention kernels and a Transformer built on them")
        {
            deviceOption,
            verboseOption,
            DevicesCommand.Create(deviceOption),
            GenerateCommand.Create(deviceOption),
            EmbedCommand.Create(deviceOption),
            BenchCommand.Create(deviceOption),
        };
        return Failures.Run(root.Parse(args), verboseOption, error);
    }
}
