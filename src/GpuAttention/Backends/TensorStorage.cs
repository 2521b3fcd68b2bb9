using GpuAttention.Runtime;

namespace GpuAttention.Backends;

/// <summary>
/// A tensor's memory, owned by the backend that allocated it: <see cref="DeviceTensor"/> holds one and hands it to its
/// device's backend, which alone knows what is inside (an ILGPU buffer, or aligned native memory).
/// </summary>
internal abstract class TensorStorage : IDisposable
{
    /// <summary>Counts writes (uploads and op outputs): anything derived from the contents is valid while this is unchanged.</summary>
    public long Version { get; private set; }

    /// <summary>Every write of the contents calls this first.</summary>
    public void MarkWritten() => Version++;

    /// <summary>Copies the elements in, as <typeparamref name="T"/> of the storage's element size (exactly its length).</summary>
    public abstract void CopyFrom<T>(ReadOnlySpan<T> source) where T : unmanaged;

    /// <summary>Copies the elements out (exactly its length), after pending work has finished.</summary>
    public abstract void CopyTo<T>(Span<T> destination) where T : unmanaged;

    /// <inheritdoc />
    public abstract void Dispose();
}
