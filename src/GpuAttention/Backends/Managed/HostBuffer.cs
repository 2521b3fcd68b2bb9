using System.Runtime.InteropServices;

namespace GpuAttention.Backends.Managed;

/// <summary>
/// Native memory of the managed CPU backend, aligned to 64 bytes (a cache line, and every vector width) so the
/// kernels' vector loads never split a line. Freed on dispose, or by the finalizer if the tensor is leaked.
/// </summary>
internal sealed unsafe class HostBuffer : IDisposable
{
    public const nuint Alignment = 64;

    private nint address;

    public HostBuffer(long bytes)
    {
        address = (nint)NativeMemory.AlignedAlloc((nuint)bytes, Alignment);
        Bytes = bytes;
        GC.AddMemoryPressure(bytes);
    }

    ~HostBuffer() => Free();

    public long Bytes { get; }

    public void* Pointer => address != 0 ? (void*)address : throw new ObjectDisposedException(nameof(HostBuffer));

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    private void Free()
    {
        nint owned = Interlocked.Exchange(ref address, 0);
        if (owned == 0)
            return;
        NativeMemory.AlignedFree((void*)owned);
        GC.RemoveMemoryPressure(Bytes);
    }
}
