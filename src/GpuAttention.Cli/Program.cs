using System.CommandLine;
using GpuAttention.Cli;

var deviceOption = new Option<string?>("--device")
{
    Description = "cuda, opencl or cpu (default: GPUATTENTION_DEVICE, else CUDA > OpenCL > CPU accelerator)",
};

var root = new RootCommand("GpuAttention: ILGPU attention kernels and a Transformer built on them")
{
    DevicesCommand.Create(deviceOption),
    GenerateCommand.Create(deviceOption),
    BenchCommand.Create(deviceOption),
};
return root.Parse(args).Invoke();
