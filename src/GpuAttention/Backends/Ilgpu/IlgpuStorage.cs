using GpuAttention.Runtime;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAttention.Backends.Ilgpu;

/// <summary>An ILGPU-backend tensor's memory: one accelerator buffer (floats for F32, 16-bit patterns for F16 and BF16).</summary>
internal sealed class IlgpuStorage(IlgpuBackend backend, MemoryBuffer buffer, ArrayView<byte> bytes) : TensorStorage
{
    private MemoryBuffer? owned = buffer;

    /// <summary>The contents as elements of <typeparamref name="T"/>.</summary>
    public ArrayView<T> View<T>() where T : unmanaged =>
        owned is null ? throw new ObjectDisposedException(nameof(DeviceTensor)) : bytes.Cast<T>();

    public override void CopyFrom<T>(ReadOnlySpan<T> source) => View<T>().CopyFromCPU(source);

    public override void CopyTo<T>(Span<T> destination)
    {
        backend.Synchronize();
        View<T>().CopyToCPU(destination);
    }

    public override void Dispose()
    {
        var buffer = Interlocked.Exchange(ref owned, null);
        if (buffer is null)
            return;
        buffer.Dispose();
        backend.Track(-bytes.Length);
    }
}
