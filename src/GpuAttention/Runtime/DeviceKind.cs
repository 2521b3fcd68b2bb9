namespace GpuAttention.Runtime;

/// <summary>The backends a <see cref="ComputeDevice"/> can run on, in order of preference.</summary>
public enum DeviceKind
{
    /// <summary>An NVIDIA GPU through ILGPU's CUDA backend.</summary>
    Cuda,
    /// <summary>An OpenCL device (GPU or CPU) through ILGPU's OpenCL backend.</summary>
    OpenCL,
    /// <summary>
    /// The managed CPU backend: the ops run as vectorised C# (<c>System.Runtime.Intrinsics</c>) across the cores,
    /// no ILGPU involved. The default when no GPU is present; named <c>cpu</c> on the command line.
    /// </summary>
    ManagedCpu,
    /// <summary>ILGPU's CPU accelerator: GPU threads simulated by OS threads, for checking the ILGPU kernels (correctness, not speed).</summary>
    CpuAccelerator,
}

/// <summary>One device this machine offers: an accelerator ILGPU sees, or the managed CPU backend.</summary>
/// <param name="Kind">Its backend.</param>
/// <param name="Name">The name the driver reports.</param>
/// <param name="MemoryBytes">Device memory (for the CPU backends, the memory the runtime may use).</param>
/// <param name="MaxGroupSize">Most threads in one group.</param>
/// <param name="WarpSize">Threads per warp as ILGPU reports it.</param>
/// <param name="IsCpuHardware">True when the hardware is a CPU: the managed backend, the CPU accelerator, or an OpenCL CPU driver such as PoCL.</param>
public sealed record DeviceInfo(DeviceKind Kind, string Name, long MemoryBytes, int MaxGroupSize, int WarpSize, bool IsCpuHardware);
