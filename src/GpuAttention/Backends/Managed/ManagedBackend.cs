using GpuAttention.Kernels;
using GpuAttention.Kernels.Cpu;
using GpuAttention.Runtime;

namespace GpuAttention.Backends.Managed;

/// <summary>
/// The managed CPU backend: every op as vectorised C# (<c>kernels/Cpu/</c>) over aligned native memory, spread over the
/// cores. It owns what only it needs: the pool of host buffers tensors rent, the thread policy and scratch memory of its
/// kernels (<see cref="CpuExecution"/>), and the packed weights kept with its tensors (<see cref="ManagedStorage"/>).
/// </summary>
internal sealed unsafe partial class ManagedBackend : Backend
{
    private readonly HostBufferPool pool = new();
    private bool disposed;

    /// <summary>A backend whose ops spread over at most <paramref name="threads"/> threads.</summary>
    public ManagedBackend(int threads)
    {
        Execution = new CpuExecution(threads, Track);
    }

    /// <summary>Threads a backend uses unless told otherwise: one per logical processor.</summary>
    public static int DefaultThreads => Environment.ProcessorCount;

    /// <summary>A backend's name: its instruction set and threads.</summary>
    public static string Describe(int threads) => $"Managed CPU ({CpuFeatures.Description}, {threads} thread{(threads == 1 ? "" : "s")})";

    public override DeviceKind Kind => DeviceKind.ManagedCpu;

    public override string Name => Describe(Execution.Threads);

    public override bool IsCpuHardware => true;

    /// <summary>How the kernels run: threads and counted scratch memory.</summary>
    public CpuExecution Execution { get; }

    public override TensorStorage Allocate(DType dtype, long length)
    {
        long bytes = checked(length * dtype.Size());
        HostBuffer buffer;
        try
        {
            buffer = pool.Rent(bytes);
        }
        catch (OutOfMemoryException e)
        {
            throw new InsufficientMemoryException($"The managed CPU backend could not allocate {bytes} bytes: {e.Message}", e);
        }
        Track(bytes);
        return new ManagedStorage(this, buffer);
    }

    /// <summary>Gives a disposed tensor's buffer back to the pool (freed instead once the backend is disposed).</summary>
    internal void Return(HostBuffer buffer)
    {
        Track(-buffer.Bytes);
        pool.Return(buffer);
    }

    public override void Synchronize()
    {
    }

    public override void Dispose()
    {
        if (disposed)
            return;
        disposed = true;
        Execution.Dispose();
        pool.Dispose();
    }

    public override void Convert(DeviceTensor x, DeviceTensor y)
    {
        void* source = Storage(x).Pointer, target = Storage(y).Pointer;
        long length = x.Length;
        switch (x.DType, y.DType)
        {
            case (DType.F32, DType.F16):
                CpuElementwise.Convert<float, ushort, F32ToF16>(Execution, (float*)source, (ushort*)target, length);
                break;
            case (DType.F32, DType.BF16):
                CpuElementwise.Convert<float, ushort, F32ToBF16>(Execution, (float*)source, (ushort*)target, length);
                break;
            case (DType.F16, DType.F32):
                CpuElementwise.Convert<ushort, float, F16ToF32>(Execution, (ushort*)source, (float*)target, length);
                break;
            case (DType.BF16, DType.F32):
                CpuElementwise.Convert<ushort, float, BF16ToF32>(Execution, (ushort*)source, (float*)target, length);
                break;
            case (DType.F16, DType.BF16):
                CpuElementwise.Convert<ushort, ushort, F16ToBF16>(Execution, (ushort*)source, (ushort*)target, length);
                break;
            case (DType.BF16, DType.F16):
                CpuElementwise.Convert<ushort, ushort, BF16ToF16>(Execution, (ushort*)source, (ushort*)target, length);
                break;
            default:
                Buffer.MemoryCopy(source, target, Storage(y).Bytes, Storage(x).Bytes);
                break;
        }
    }

    private static ManagedStorage Storage(DeviceTensor tensor) => (ManagedStorage)tensor.Storage;

    private static float* Floats(DeviceTensor tensor) => Storage(tensor).Floats;

    private static float* FloatsOrNull(DeviceTensor? tensor) => tensor is null ? null : Storage(tensor).Floats;
}
