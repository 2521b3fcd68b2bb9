using System.Runtime.InteropServices;

namespace GpuAttention.Runtime;

/// <summary>
/// Native memory of the managed CPU backend, aligned to 64 bytes (a cache line, and every vector width) so the
/// kernels' vector loads never split a line. Freed on dispose, or by the finalizer if the tensor is leaked.
/// </summary>
internal sealed unsafe class HostBuffer : IDisposable
{
    public const nuint Alignment = 64;

    private nint address;

    public HostBuffer(long length)
    {
        long bytes = checked(length * sizeof(float));
        address = (nint)NativeMemory.AlignedAlloc((nuint)bytes, Alignment);
        Length = length;
        GC.AddMemoryPressure(bytes);
    }

    ~HostBuffer() => Free();

    public long Length { get; }

    public float* Pointer => address != 0 ? (float*)address : throw new ObjectDisposedException(nameof(HostBuffer));

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
        GC.RemoveMemoryPressure(Length * sizeof(float));
    }
}
