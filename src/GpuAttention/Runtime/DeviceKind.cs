namespace GpuAttention.Runtime;

/// <summary>The accelerator families a <see cref="ComputeDevice"/> can run on, in order of preference.</summary>
public enum DeviceKind
{
    /// <summary>An NVIDIA GPU through ILGPU's CUDA backend.</summary>
    Cuda,
    /// <summary>An OpenCL device (GPU or CPU) through ILGPU's OpenCL backend.</summary>
    OpenCL,
    /// <summary>ILGPU's CPU accelerator: GPU threads simulated by OS threads (correctness, not speed).</summary>
    Cpu,
}

/// <summary>One accelerator ILGPU sees on this machine.</summary>
/// <param name="Kind">Its family.</param>
/// <param name="Name">The name the driver reports.</param>
/// <param name="MemoryBytes">Device memory (for the CPU accelerator, what ILGPU reports).</param>
/// <param name="MaxGroupSize">Most threads in one group.</param>
/// <param name="WarpSize">Threads per warp as ILGPU reports it.</param>
/// <param name="IsCpu">True when the hardware is a CPU: the CPU accelerator, or an OpenCL CPU driver such as PoCL.</param>
public sealed record DeviceInfo(DeviceKind Kind, string Name, long MemoryBytes, int MaxGroupSize, int WarpSize, bool IsCpu);
