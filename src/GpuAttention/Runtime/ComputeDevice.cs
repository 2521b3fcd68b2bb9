using System.Runtime.InteropServices;
using GpuAttention.Backends;
using GpuAttention.Backends.Ilgpu;
using GpuAttention.Backends.Managed;
using GpuAttention.Kernels.Cpu;

namespace GpuAttention.Runtime;

/// <summary>
/// Where tensors live and ops run; every <see cref="DeviceTensor"/> lives on one. A device is a backend — the managed
/// CPU backend, or ILGPU on CUDA, OpenCL or its CPU accelerator — chosen once: CUDA, then an OpenCL GPU, then the
/// managed CPU backend, unless <see cref="EnvironmentVariable"/> or the caller names a kind.
/// </summary>
public sealed class ComputeDevice : IDisposable
{
    /// <summary>Names the device kind to use: <c>cuda</c>, <c>opencl</c>, <c>cpu</c> or <c>cpu-accelerator</c>.</summary>
    public const string EnvironmentVariable = "GPUATTENTION_DEVICE";

    /// <summary>The device kind names <see cref="EnvironmentVariable"/> and the CLI accept.</summary>
    public const string KindNames = "cuda, opencl, cpu, cpu-accelerator";

    private static readonly DeviceKind[] Preference = [DeviceKind.Cuda, DeviceKind.OpenCL, DeviceKind.ManagedCpu, DeviceKind.CpuAccelerator];

    private static int opened;
    private bool disposed;

    private ComputeDevice(Backend backend)
    {
        Backend = backend;
        Ordinal = Interlocked.Increment(ref opened);
    }

    /// <summary>Which device this is among those opened by the process (1, 2, …): tells apart two devices of one kind in messages.</summary>
    internal int Ordinal { get; }

    /// <summary>The backend in use.</summary>
    public DeviceKind Kind => Backend.Kind;

    /// <summary>True when the hardware is a CPU: the managed backend, the CPU accelerator, or an OpenCL CPU driver such as PoCL.</summary>
    public bool IsCpuHardware => Backend.IsCpuHardware;

    /// <summary>The accelerator's name as its driver reports it, or the managed backend's instruction set and threads.</summary>
    public string Name => Backend.Name;

    /// <summary>Group sizes and tiles the ILGPU kernels launch with; null on the managed CPU backend, which launches none.</summary>
    public LaunchProfile? Profile => Backend.Profile;

    /// <summary>Bytes held by live tensors of this device and by the scratch memory of ops in progress.</summary>
    public long BytesAllocated => Backend.BytesAllocated;

    /// <summary>The most bytes held at once since creation or the last <see cref="ResetPeakBytes"/>.</summary>
    public long PeakBytesAllocated => Backend.PeakBytesAllocated;

    /// <summary>What runs the ops.</summary>
    internal Backend Backend { get; }

    /// <summary>
    /// Opens a device. <paramref name="kind"/> wins over <see cref="EnvironmentVariable"/>, which wins over
    /// the preference order CUDA, OpenCL GPU, managed CPU backend. <paramref name="profile"/> (ILGPU devices only)
    /// defaults to <see cref="LaunchProfile.DefaultFor"/> the chosen device.
    /// </summary>
    /// <exception cref="ArgumentException">
    /// The environment variable names no known kind, the profile is invalid, or a profile is given for the managed CPU backend.
    /// </exception>
    /// <exception cref="InvalidOperationException">The requested kind has no device here; the message lists those present.</exception>
    public static ComputeDevice Create(DeviceKind? kind = null, LaunchProfile? profile = null)
    {
        kind ??= KindFromEnvironment();
        if (kind is { } requested && !Enum.IsDefined(requested))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, $"Unknown device kind; expected one of: {KindNames}.");
        if (kind != DeviceKind.ManagedCpu && IlgpuBackend.Open(kind, profile) is { } ilgpu)
            return new ComputeDevice(ilgpu);
        if (profile is not null)
            throw new ArgumentException(
                "A launch profile applies to ILGPU devices (cuda, opencl, cpu-accelerator); the managed CPU backend launches no kernels.",
                nameof(profile));
        return new ComputeDevice(new ManagedBackend(ManagedBackend.DefaultThreads));
    }

    /// <summary>Most threads <see cref="CreateManagedCpu"/> accepts.</summary>
    public const int MaxThreads = 1024;

    /// <summary>
    /// Opens the managed CPU backend with its ops spread over at most <paramref name="threads"/> threads (1 runs every op on
    /// the calling thread): to share a machine with other work, or to compare with another engine at the same thread
    /// count. <see cref="Create"/> uses one thread per logical processor.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="threads"/> is outside 1 … <see cref="MaxThreads"/>.</exception>
    public static ComputeDevice CreateManagedCpu(int threads)
    {
        if (threads is < 1 or > MaxThreads)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, $"Argument 'threads' must be in 1..{MaxThreads}.");
        return new ComputeDevice(new ManagedBackend(threads));
    }

    /// <summary>
    /// Lists every device in preference order: the accelerators ILGPU sees and the managed CPU backend (whose
    /// max group is its thread count and whose warp is its vector width in floats).
    /// </summary>
    public static IReadOnlyList<DeviceInfo> ListDevices()
    {
        var managed = new DeviceInfo(DeviceKind.ManagedCpu, ManagedBackend.Describe(ManagedBackend.DefaultThreads),
            (long)GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, ManagedBackend.DefaultThreads, CpuFeatures.VectorFloats, true);
        return IlgpuBackend.ListDevices()
            .Append(managed)
            .OrderBy(d => Array.IndexOf(Preference, d.Kind))
            .ThenBy(d => d.IsCpuHardware)
            .ToList();
    }

    /// <summary>Allocates an uninitialised F32 tensor of <paramref name="shape"/> on this device.</summary>
    public DeviceTensor Allocate(params int[] shape) => new(this, DType.F32, shape);

    /// <summary>Allocates an uninitialised tensor of <paramref name="dtype"/> and <paramref name="shape"/> on this device.</summary>
    public DeviceTensor Allocate(DType dtype, params int[] shape) => new(this, dtype, shape);

    /// <summary>Allocates an F32 tensor of <paramref name="shape"/> and copies <paramref name="data"/> into it.</summary>
    public DeviceTensor Upload(ReadOnlySpan<float> data, params int[] shape) => Upload(DType.F32, data, shape);

    /// <summary>Allocates an F16 tensor of <paramref name="shape"/> and copies <paramref name="data"/> into it.</summary>
    public DeviceTensor Upload(ReadOnlySpan<Half> data, params int[] shape) => Upload(DType.F16, MemoryMarshal.Cast<Half, ushort>(data), shape);

    /// <summary>Allocates a BF16 tensor of <paramref name="shape"/> and copies <paramref name="data"/> into it.</summary>
    public DeviceTensor Upload(ReadOnlySpan<BFloat16> data, params int[] shape) => Upload(DType.BF16, MemoryMarshal.Cast<BFloat16, ushort>(data), shape);

    /// <summary>Waits for every launched kernel to finish (the managed backend's ops finish before they return).</summary>
    public void Synchronize()
    {
        ThrowIfDisposed();
        Backend.Synchronize();
    }

    /// <summary>Restarts <see cref="PeakBytesAllocated"/> from the bytes held now.</summary>
    public void ResetPeakBytes() => Backend.ResetPeak();

    /// <inheritdoc />
    public override string ToString() => $"{KindName(Kind)}: {Name}";

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        Backend.Dispose();
    }

    internal void ThrowIfDisposed()
    {
        if (disposed)
            throw new ObjectDisposedException(nameof(ComputeDevice), $"The device {this} (#{Ordinal}) has been disposed; its tensors can no longer be used.");
    }

    private DeviceTensor Upload<T>(DType dtype, ReadOnlySpan<T> data, int[] shape) where T : unmanaged
    {
        var tensor = new DeviceTensor(this, dtype, shape);
        try
        {
            tensor.CopyFrom(dtype, data, "data");
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        return tensor;
    }

    /// <summary>The kind's name in <see cref="EnvironmentVariable"/> and on the command line.</summary>
    public static string KindName(DeviceKind kind) => kind switch
    {
        DeviceKind.Cuda => "cuda",
        DeviceKind.OpenCL => "opencl",
        DeviceKind.ManagedCpu => "cpu",
        DeviceKind.CpuAccelerator => "cpu-accelerator",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, $"Unknown device kind; expected one of: {KindNames}."),
    };

    /// <summary>Parses a kind's name (<see cref="KindNames"/>, any case); null for null or blank.</summary>
    /// <exception cref="ArgumentException">The name is none of <see cref="KindNames"/>; <paramref name="source"/> names where it came from.</exception>
    public static DeviceKind? ParseKind(string? name, string source)
    {
        if (string.IsNullOrWhiteSpace(name))
            return null;
        foreach (var kind in Preference)
        {
            if (string.Equals(KindName(kind), name.Trim(), StringComparison.OrdinalIgnoreCase))
                return kind;
        }
        throw new ArgumentException($"{source}='{name}' names no device kind; expected one of: {KindNames}.", source);
    }

    private static DeviceKind? KindFromEnvironment() =>
        ParseKind(Environment.GetEnvironmentVariable(EnvironmentVariable), EnvironmentVariable);
}
