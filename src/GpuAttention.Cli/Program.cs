using System.CommandLine;
using GpuAttention.Cli;

var deviceOption = new Option<string?>("--device")
{
    Description = "cuda, opencl, cpu (the managed SIMD backend) or cpu-accelerator (ILGPU's simulator; default: GPUATTENTION_DEVICE, else CUDA > OpenCL GPU > cpu)",
};

var root = new RootCommand("GpuAttention: ILGPU attention kernels and a Transformer built on them")
{
    DevicesCommand.Create(deviceOption),
    GenerateCommand.Create(deviceOption),
    BenchCommand.Create(deviceOption),
};
return root.Parse(args).Invoke();
