using GpuAttention.Backends.Managed;
using GpuAttention.Ops;
using GpuAttention.Runtime;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace GpuAttention.Backends.Ilgpu;

/// <summary>
/// The ILGPU backend: the kernels of <c>kernels/</c>, JIT-compiled for CUDA, OpenCL or ILGPU's CPU accelerator. It owns
/// the ILGPU context and accelerator, the compiled kernels (<see cref="KernelLibrary"/>) and the
/// <see cref="LaunchProfile"/> every launch shape is derived from.
/// </summary>
internal sealed partial class IlgpuBackend : Backend
{
    /// <summary>
    /// The CPU accelerator's shape: warps of 4 (its warp intrinsics cost barriers, cheaper in small warps)
    /// and 64 warps per multiprocessor, so groups of up to 256 threads — the GPU launch profile — run on it.
    /// </summary>
    private static CPUDevice CpuAcceleratorShape => new(numThreadsPerWarp: 4, numWarpsPerMultiprocessor: 64, numMultiprocessors: 1);

    private readonly Context context;
    private readonly Accelerator accelerator;

    /// <summary>The ILGPU accelerator, for tests that launch the primitives' check kernels directly.</summary>
    internal Accelerator Accelerator => accelerator;
    private readonly Lazy<KernelLibrary> kernels;
    private readonly LaunchProfile profile;
    private bool disposed;

    private IlgpuBackend(Context context, Accelerator accelerator, DeviceKind kind, bool isCpuHardware, LaunchProfile profile)
    {
        this.context = context;
        this.accelerator = accelerator;
        this.profile = profile;
        Kind = kind;
        IsCpuHardware = isCpuHardware;
        kernels = new Lazy<KernelLibrary>(() => new KernelLibrary(accelerator));
    }

    public override DeviceKind Kind { get; }

    public override string Name => accelerator.Name;

    public override bool IsCpuHardware { get; }

    public override LaunchProfile Profile => profile;

    public override IReadOnlyList<MatMulAlgorithm> MatMulAlgorithms { get; } = [MatMulAlgorithm.Tiled, MatMulAlgorithm.Naive];

    private KernelLibrary Kernels => kernels.Value;

    /// <summary>
    /// Opens <paramref name="requested"/> (an error naming the devices present if there is none), or by default the
    /// preferred GPU — null when there is no GPU. <paramref name="profile"/> defaults to <see cref="LaunchProfile.DefaultFor"/>.
    /// </summary>
    public static IlgpuBackend? Open(DeviceKind? requested, LaunchProfile? profile)
    {
        var context = CreateContext();
        try
        {
            var choice = Choose(context, requested);
            if (choice is null)
            {
                context.Dispose();
                return null;
            }
            var (device, kind) = choice.Value;
            var accelerator = device is CPUDevice cpu
                ? cpu.CreateCPUAccelerator(context, CPUAcceleratorMode.Parallel)
                : device.CreateAccelerator(context);
            profile ??= LaunchProfile.DefaultFor(kind, IsCpuDevice(device));
            try
            {
                profile.Validate(accelerator.MaxNumThreadsPerGroup);
            }
            catch
            {
                accelerator.Dispose();
                throw;
            }
            return new IlgpuBackend(context, accelerator, kind, IsCpuDevice(device), profile);
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    /// <summary>The accelerators ILGPU sees.</summary>
    public static IReadOnlyList<DeviceInfo> ListDevices()
    {
        using var context = CreateContext();
        return context.Devices
            .Select(d => new DeviceInfo(KindOf(d), d.Name, d.MemorySize, d.MaxNumThreadsPerGroup, d.WarpSize, IsCpuDevice(d)))
            .ToList();
    }

    public override TensorStorage Allocate(DType dtype, long length)
    {
        MemoryBuffer buffer;
        ArrayView<byte> bytes;
        try
        {
            if (dtype == DType.F32)
            {
                var floats = accelerator.Allocate1D<float>(length);
                (buffer, bytes) = (floats, floats.View.BaseView.Cast<byte>());
            }
            else
            {
                var halves = accelerator.Allocate1D<ushort>(length);
                (buffer, bytes) = (halves, halves.View.BaseView.Cast<byte>());
            }
        }
        catch (Exception e) when (e is AcceleratorException or OutOfMemoryException)
        {
            throw new InsufficientMemoryException(
                $"Allocating {length} {dtype} elements ({length * dtype.Size()} bytes) on {Name} failed: {e.Message}", e);
        }
        Track(bytes.Length);
        return new IlgpuStorage(this, buffer, bytes);
    }

    public override void Synchronize() => accelerator.Synchronize();

    public override void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        accelerator.Dispose();
        context.Dispose();
    }

    public override void Convert(DeviceTensor x, DeviceTensor y)
    {
        var elements = Elements(x);
        switch (x.DType, y.DType)
        {
            case (DType.F32, DType.F16):
                Kernels.F32ToF16(elements, View<float>(x), View<ushort>(y));
                break;
            case (DType.F32, DType.BF16):
                Kernels.F32ToBF16(elements, View<float>(x), View<ushort>(y));
                break;
            case (DType.F16, DType.F32):
                Kernels.F16ToF32(elements, View<ushort>(x), View<float>(y));
                break;
            case (DType.BF16, DType.F32):
                Kernels.BF16ToF32(elements, View<ushort>(x), View<float>(y));
                break;
            case (DType.F16, DType.BF16):
                Kernels.F16ToBF16(elements, View<ushort>(x), View<ushort>(y));
                break;
            case (DType.BF16, DType.F16):
                Kernels.BF16ToF16(elements, View<ushort>(x), View<ushort>(y));
                break;
            default:
                View<byte>(y).CopyFrom(View<byte>(x));
                break;
        }
    }

    /// <summary>A tensor's elements as <typeparamref name="T"/>.</summary>
    private static ArrayView<T> View<T>(DeviceTensor tensor) where T : unmanaged => ((IlgpuStorage)tensor.Storage).View<T>();

    private static ArrayView<float> Floats(DeviceTensor tensor) => View<float>(tensor);

    private static ArrayView<float> FloatsOrEmpty(DeviceTensor? tensor) => tensor is null ? default : View<float>(tensor);

    /// <summary>One index per element (the ops keep tensors within the grid's int range).</summary>
    private static Index1D Elements(DeviceTensor tensor) => new(checked((int)tensor.Length));

    /// <summary>
    /// Copies <paramref name="values"/> into a device buffer that lives for one launch: counted as device memory, and freed
    /// only after the launch has finished.
    /// </summary>
    private Temporary<T> Upload<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        var buffer = accelerator.Allocate1D<T>(values.Length);
        buffer.View.BaseView.CopyFromCPU(values);
        return new Temporary<T>(this, buffer);
    }

    private sealed class Temporary<T> : IDisposable where T : unmanaged
    {
        private readonly IlgpuBackend backend;
        private readonly MemoryBuffer1D<T, Stride1D.Dense> buffer;

        public Temporary(IlgpuBackend backend, MemoryBuffer1D<T, Stride1D.Dense> buffer)
        {
            this.backend = backend;
            this.buffer = buffer;
            backend.Track(buffer.LengthInBytes);
        }

        public ArrayView<T> View => buffer.View;

        public void Dispose()
        {
            backend.Synchronize();
            buffer.Dispose();
            backend.Track(-buffer.LengthInBytes);
        }
    }

    private static Context CreateContext() => Context.Create(Configure);

    /// <summary>
    /// The context every ILGPU device is made in, and the PTX gate compiles with: CUDA, OpenCL and the CPU accelerator,
    /// ILGPU.Algorithms' intrinsics, and optimisation level O2, whose address-space inference turns the kernels' generic
    /// loads and stores into global ones (LDG/STG on the GPU; O1 leaves them generic).
    /// </summary>
    internal static void Configure(Context.Builder builder) =>
        builder.Cuda().OpenCL().CPU(CpuAcceleratorShape).EnableAlgorithms().Optimize(OptimizationLevel.O2);

    /// <summary>The requested kind's device (an error if absent), or by default a GPU; null when there is none.</summary>
    private static (Device Device, DeviceKind Kind)? Choose(Context context, DeviceKind? requested)
    {
        var available = context.Devices.Select(d => (Device: d, Kind: KindOf(d))).ToList();
        if (requested is null)
        {
            var gpu = available.Where(d => !IsCpuDevice(d.Device)).OrderBy(d => d.Kind).FirstOrDefault();
            return gpu.Device is null ? null : gpu;
        }
        var match = available.FirstOrDefault(d => d.Kind == requested);
        if (match.Device is not null)
            return match;
        string present = string.Join(", ", available.Select(d => $"{ComputeDevice.KindName(d.Kind)} ({d.Device.Name})")
            .Append($"{ComputeDevice.KindName(DeviceKind.ManagedCpu)} ({ManagedBackend.Describe(ManagedBackend.DefaultThreads)})"));
        throw new InvalidOperationException($"No {ComputeDevice.KindName(requested.Value)} device is available. Devices present: {present}.");
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
        _ => DeviceKind.CpuAccelerator,
    };
}
