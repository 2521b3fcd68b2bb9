using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace GpuAttention.Runtime;

/// <summary>
/// Owns an ILGPU context, one accelerator, its compiled kernels and the launch profile; every
/// <see cref="DeviceTensor"/> lives on one. Chosen once: CUDA, then OpenCL, then the CPU accelerator,
/// unless <see cref="EnvironmentVariable"/> or the caller names a kind.
/// </summary>
public sealed class ComputeDevice : IDisposable
{
    /// <summary>Names the device kind to use: <c>cuda</c>, <c>opencl</c> or <c>cpu</c>.</summary>
    public const string EnvironmentVariable = "GPUATTENTION_DEVICE";

    /// <summary>
    /// The CPU accelerator's shape: warps of 4 (its warp intrinsics cost barriers, cheaper in small warps)
    /// and 64 warps per multiprocessor, so groups of up to 256 threads — the GPU launch profile — run on it.
    /// </summary>
    private static CPUDevice CpuAcceleratorShape => new(numThreadsPerWarp: 4, numWarpsPerMultiprocessor: 64, numMultiprocessors: 1);

    private static readonly DeviceKind[] Preference = [DeviceKind.Cuda, DeviceKind.OpenCL, DeviceKind.Cpu];

    private readonly Context context;
    private readonly Lazy<KernelLibrary> kernels;
    private long bytesAllocated;
    private long peakBytesAllocated;
    private bool disposed;

    private ComputeDevice(Context context, Accelerator accelerator, DeviceKind kind, bool isCpu, LaunchProfile profile)
    {
        this.context = context;
        Accelerator = accelerator;
        Kind = kind;
        IsCpu = isCpu;
        Profile = profile;
        kernels = new Lazy<KernelLibrary>(() => new KernelLibrary(accelerator));
    }

    /// <summary>The family of the accelerator in use.</summary>
    public DeviceKind Kind { get; }

    /// <summary>True when the hardware is a CPU (the CPU accelerator, or an OpenCL CPU driver such as PoCL).</summary>
    public bool IsCpu { get; }

    /// <summary>The accelerator's name as its driver reports it.</summary>
    public string Name => Accelerator.Name;

    /// <summary>Group sizes and tiles the ops launch with on this device.</summary>
    public LaunchProfile Profile { get; }

    /// <summary>Bytes held by live tensors of this device, scratch buffers of ops included.</summary>
    public long BytesAllocated => Interlocked.Read(ref bytesAllocated);

    /// <summary>The most bytes held at once since creation or the last <see cref="ResetPeakBytes"/>.</summary>
    public long PeakBytesAllocated => Interlocked.Read(ref peakBytesAllocated);

    internal Accelerator Accelerator { get; }

    internal KernelLibrary Kernels => kernels.Value;

    /// <summary>
    /// Opens a device. <paramref name="kind"/> wins over <see cref="EnvironmentVariable"/>, which wins over
    /// the preference order CUDA, OpenCL, CPU accelerator. <paramref name="profile"/> defaults to
    /// <see cref="LaunchProfile.DefaultFor"/> the chosen device.
    /// </summary>
    /// <exception cref="ArgumentException">The environment variable names no known kind, or the profile is invalid.</exception>
    /// <exception cref="InvalidOperationException">The requested kind has no device here; the message lists those present.</exception>
    public static ComputeDevice Create(DeviceKind? kind = null, LaunchProfile? profile = null)
    {
        kind ??= KindFromEnvironment();
        var context = CreateContext();
        try
        {
            var (device, chosen) = Choose(context, kind);
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

    /// <summary>Lists every accelerator ILGPU sees, in preference order.</summary>
    public static IReadOnlyList<DeviceInfo> ListDevices()
    {
        using var context = CreateContext();
        return context.Devices
            .Select(d => new DeviceInfo(KindOf(d), d.Name, d.MemorySize, d.MaxNumThreadsPerGroup, d.WarpSize, IsCpuDevice(d)))
            .OrderBy(d => Array.IndexOf(Preference, d.Kind))
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

    /// <summary>Waits for every launched kernel to finish.</summary>
    public void Synchronize() => Accelerator.Synchronize();

    /// <summary>Restarts <see cref="PeakBytesAllocated"/> from the bytes held now.</summary>
    public void ResetPeakBytes() => Interlocked.Exchange(ref peakBytesAllocated, BytesAllocated);

    /// <inheritdoc />
    public override string ToString() => $"{Kind}: {Name}";

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        Accelerator.Dispose();
        context.Dispose();
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

    private static (Device Device, DeviceKind Kind) Choose(Context context, DeviceKind? requested)
    {
        var available = context.Devices.Select(d => (Device: d, Kind: KindOf(d))).ToList();
        foreach (var kind in requested is { } only ? [only] : Preference)
        {
            var match = available.FirstOrDefault(d => d.Kind == kind);
            if (match.Device is not null)
                return match;
        }
        string present = string.Join(", ", available.Select(d => $"{d.Kind.ToString().ToLowerInvariant()} ({d.Device.Name})"));
        throw new InvalidOperationException(
            $"No {requested?.ToString().ToLowerInvariant() ?? "usable"} device is available. Devices present: {present}.");
    }

    private static DeviceKind? KindFromEnvironment()
    {
        string? value = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (string.IsNullOrWhiteSpace(value))
            return null;
        return value.Trim().ToLowerInvariant() switch
        {
            "cuda" => DeviceKind.Cuda,
            "opencl" => DeviceKind.OpenCL,
            "cpu" => DeviceKind.Cpu,
            _ => throw new ArgumentException(
                $"{EnvironmentVariable}='{value}' names no device kind; expected one of: cuda, opencl, cpu.", EnvironmentVariable),
        };
    }

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
        _ => DeviceKind.Cpu,
    };
}
