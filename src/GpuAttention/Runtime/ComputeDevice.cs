using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace GpuAttention.Runtime;

/// <summary>
/// Where tensors live and ops run; every <see cref="DeviceTensor"/> lives on one. An accelerator device owns an
/// ILGPU context, one accelerator, its compiled kernels and the launch profile; the managed CPU backend
/// (<see cref="DeviceKind.Cpu"/>) owns nothing but its memory accounting. Chosen once: CUDA, then an OpenCL GPU,
/// then the managed CPU backend, unless <see cref="EnvironmentVariable"/> or the caller names a kind.
/// </summary>
public sealed class ComputeDevice : IDisposable
{
    /// <summary>Names the device kind to use: <c>cuda</c>, <c>opencl</c>, <c>cpu</c> or <c>cpu-accelerator</c>.</summary>
    public const string EnvironmentVariable = "GPUATTENTION_DEVICE";

    /// <summary>The device kind names <see cref="EnvironmentVariable"/> and the CLI accept.</summary>
    public const string KindNames = "cuda, opencl, cpu, cpu-accelerator";

    /// <summary>
    /// The CPU accelerator's shape: warps of 4 (its warp intrinsics cost barriers, cheaper in small warps)
    /// and 64 warps per multiprocessor, so groups of up to 256 threads — the GPU launch profile — run on it.
    /// </summary>
    private static CPUDevice CpuAcceleratorShape => new(numThreadsPerWarp: 4, numWarpsPerMultiprocessor: 64, numMultiprocessors: 1);

    private static readonly DeviceKind[] Preference = [DeviceKind.Cuda, DeviceKind.OpenCL, DeviceKind.Cpu, DeviceKind.CpuAccelerator];

    private readonly Context? context;
    private readonly Accelerator? accelerator;
    private readonly Lazy<KernelLibrary>? kernels;
    private readonly HostBufferPool? hostBuffers;
    private long bytesAllocated;
    private long peakBytesAllocated;
    private bool disposed;

    private ComputeDevice(Context context, Accelerator accelerator, DeviceKind kind, bool isCpu, LaunchProfile profile)
    {
        this.context = context;
        this.accelerator = accelerator;
        Kind = kind;
        IsCpu = isCpu;
        Profile = profile;
        Name = accelerator.Name;
        kernels = new Lazy<KernelLibrary>(() => new KernelLibrary(accelerator));
    }

    private ComputeDevice()
    {
        hostBuffers = new HostBufferPool();
        Kind = DeviceKind.Cpu;
        IsCpu = true;
        Name = ManagedCpuName;
    }

    /// <summary>The family of the accelerator in use.</summary>
    public DeviceKind Kind { get; }

    /// <summary>True when the hardware is a CPU (the managed backend, the CPU accelerator, or an OpenCL CPU driver such as PoCL).</summary>
    public bool IsCpu { get; }

    /// <summary>True for the managed CPU backend, which runs the ops as vectorised C# rather than ILGPU kernels.</summary>
    public bool IsManaged => Kind == DeviceKind.Cpu;

    /// <summary>The accelerator's name as its driver reports it, or the managed backend's instruction set and cores.</summary>
    public string Name { get; }

    /// <summary>Group sizes and tiles the ILGPU kernels launch with; null on the managed CPU backend, which launches none.</summary>
    public LaunchProfile? Profile { get; }

    /// <summary>Bytes held by live tensors of this device, scratch buffers of ops included.</summary>
    public long BytesAllocated => Interlocked.Read(ref bytesAllocated);

    /// <summary>The most bytes held at once since creation or the last <see cref="ResetPeakBytes"/>.</summary>
    public long PeakBytesAllocated => Interlocked.Read(ref peakBytesAllocated);

    internal Accelerator Accelerator => accelerator ?? throw new InvalidOperationException(
        "The managed CPU backend has no ILGPU accelerator; this op should have taken its managed path.");

    /// <summary>The managed backend's memory: tensors rent their buffers here and give them back on dispose.</summary>
    internal HostBufferPool HostBuffers => hostBuffers ?? throw new InvalidOperationException(
        "Only the managed CPU backend keeps host buffers.");

    internal KernelLibrary Kernels => (kernels ?? throw new InvalidOperationException(
        "The managed CPU backend has no ILGPU kernels; this op should have taken its managed path.")).Value;

    /// <summary>Hardware threads the managed CPU backend spreads an op over.</summary>
    internal static int ManagedThreads => Environment.ProcessorCount;

    private static string ManagedCpuName =>
        $"Managed CPU ({GpuAttention.Kernels.Cpu.CpuFeatures.Description}, {ManagedThreads} threads)";

    /// <summary>
    /// Opens a device. <paramref name="kind"/> wins over <see cref="EnvironmentVariable"/>, which wins over
    /// the preference order CUDA, OpenCL GPU, managed CPU backend. <paramref name="profile"/> (accelerators only)
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
        if (kind == DeviceKind.Cpu)
            return CreateManaged(profile);
        var context = CreateContext();
        (Device Device, DeviceKind Kind)? choice;
        try
        {
            choice = Choose(context, kind);
        }
        catch
        {
            context.Dispose();
            throw;
        }
        if (choice is null)
        {
            context.Dispose();
            return CreateManaged(profile);
        }
        try
        {
            var (device, chosen) = choice.Value;
            var accelerator = device is CPUDevice cpu
                ? cpu.CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel)
                : device.CreateAccelerator(context);
            profile ??= LaunchProfile.DefaultFor(chosen, IsCpuDevice(device));
            try
            {
                profile.Validate(accelerator.MaxNumThreadsPerGroup);
            }
            catch
            {
                accelerator.Dispose();
                throw;
            }
            return new ComputeDevice(context, accelerator, chosen, IsCpuDevice(device), profile);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Lists every device in preference order: the accelerators ILGPU sees and the managed CPU backend (whose
    /// max group is its thread count and whose warp is its vector width in floats).
    /// </summary>
    public static IReadOnlyList<DeviceInfo> ListDevices()
    {
        using var context = CreateContext();
        var managed = new DeviceInfo(DeviceKind.Cpu, ManagedCpuName, (long)GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
            ManagedThreads, GpuAttention.Kernels.Cpu.CpuFeatures.VectorFloats, true);
        return context.Devices
            .Select(d => new DeviceInfo(KindOf(d), d.Name, d.MemorySize, d.MaxNumThreadsPerGroup, d.WarpSize, IsCpuDevice(d)))
            .Append(managed)
            .OrderBy(d => Array.IndexOf(Preference, d.Kind))
            .ThenBy(d => d.IsCpu)
            .ToList();
    }

    /// <summary>Allocates an uninitialised tensor of <paramref name="shape"/> on this device.</summary>
    public DeviceTensor Allocate(params int[] shape) => new(this, shape);

    /// <summary>Allocates a tensor of <paramref name="shape"/> and copies <paramref name="data"/> into it.</summary>
    public DeviceTensor Upload(ReadOnlySpan<float> data, params int[] shape)
    {
        var tensor = new DeviceTensor(this, shape);
        try
        {
            tensor.CopyFrom(data);
        }
        catch
        {
            tensor.Dispose();
            throw;
        }
        return tensor;
    }

    /// <summary>Waits for every launched kernel to finish (the managed backend's ops finish before they return).</summary>
    public void Synchronize() => accelerator?.Synchronize();

    /// <summary>Restarts <see cref="PeakBytesAllocated"/> from the bytes held now.</summary>
    public void ResetPeakBytes() => Interlocked.Exchange(ref peakBytesAllocated, BytesAllocated);

    /// <inheritdoc />
    public override string ToString() => $"{KindName(Kind)}: {Name}";

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        hostBuffers?.Dispose();
        accelerator?.Dispose();
        context?.Dispose();
    }

    internal void TrackAllocation(long bytes)
    {
        long now = Interlocked.Add(ref bytesAllocated, bytes);
        long peak;
        while (now > (peak = Interlocked.Read(ref peakBytesAllocated)))
        {
            if (Interlocked.CompareExchange(ref peakBytesAllocated, now, peak) == peak)
                break;
        }
    }

    internal void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(disposed, this);

    private static Context CreateContext() =>
        Context.Create(builder => builder.Cuda().OpenCL().CPU(CpuAcceleratorShape).EnableAlgorithms());

    private static ComputeDevice CreateManaged(LaunchProfile? profile)
    {
        if (profile is not null)
            throw new ArgumentException(
                "A launch profile applies to ILGPU devices (cuda, opencl, cpu-accelerator); the managed CPU backend launches no kernels.",
                nameof(profile));
        return new ComputeDevice();
    }

    /// <summary>The requested kind's device (an error if absent), or by default a GPU; null when the managed backend should run.</summary>
    private static (Device Device, DeviceKind Kind)? Choose(Context context, DeviceKind? requested)
    {
        var available = context.Devices.Select(d => (Device: d, Kind: KindOf(d))).ToList();
        if (requested is null)
        {
            var gpu = available.Where(d => !IsCpuDevice(d.Device)).OrderBy(d => Array.IndexOf(Preference, d.Kind)).FirstOrDefault();
            return gpu.Device is null ? null : gpu;
        }
        var match = available.FirstOrDefault(d => d.Kind == requested);
        if (match.Device is not null)
            return match;
        string present = string.Join(", ", available.Select(d => $"{KindName(d.Kind)} ({d.Device.Name})").Append($"{KindName(DeviceKind.Cpu)} ({ManagedCpuName})"));
        throw new InvalidOperationException($"No {KindName(requested.Value)} device is available. Devices present: {present}.");
    }

    /// <summary>The kind's name in <see cref="EnvironmentVariable"/> and on the command line.</summary>
    public static string KindName(DeviceKind kind) => kind switch
    {
        DeviceKind.Cuda => "cuda",
        DeviceKind.OpenCL => "opencl",
        DeviceKind.Cpu => "cpu",
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

    private static bool IsCpuDevice(Device device) => device switch
    {
        CLDevice cl => cl.DeviceType == CLDeviceType.CL_DEVICE_TYPE_CPU,
        CudaDevice => false,
        _ => true,
    };

    private static DeviceKind KindOf(Device device) => device switch
    {
        CudaDevice => DeviceKind.Cuda,
        CLDevice => DeviceKind.OpenCL,
        _ => DeviceKind.CpuAccelerator,
    };
}
