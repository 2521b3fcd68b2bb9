using GpuAttention.Runtime;

namespace GpuAttention.Backends.Managed;

/// <summary>
/// A managed-backend tensor's memory: 64-byte-aligned native memory rented from the backend's pool, plus, for a matmul
/// B operand used the same way twice without being written in between (a weight), its packed copy.
/// </summary>
internal sealed unsafe class ManagedStorage : TensorStorage
{
    private readonly ManagedBackend backend;
    private HostBuffer? buffer;
    private Packed? packed;
    private (long Version, bool Transposed)? packCandidate;

    public ManagedStorage(ManagedBackend backend, HostBuffer buffer)
    {
        this.backend = backend;
        this.buffer = buffer;
        Bytes = buffer.Bytes;
    }

    public long Bytes { get; }

    /// <summary>The first element.</summary>
    public void* Pointer => (buffer ?? throw new ObjectDisposedException(nameof(DeviceTensor))).Pointer;

    /// <summary>The contents as floats (an F32 tensor's elements).</summary>
    public float* Floats => (float*)Pointer;

    public override void CopyFrom<T>(ReadOnlySpan<T> source) => source.CopyTo(new Span<T>(Pointer, source.Length));

    public override void CopyTo<T>(Span<T> destination) => new ReadOnlySpan<T>(Pointer, destination.Length).CopyTo(destination);

    /// <summary>
    /// The packed copy of this tensor as a matmul's B operand (<paramref name="transposed"/> as used), made by
    /// <paramref name="pack"/> into <paramref name="floats"/> floats the second time the same contents are multiplied the
    /// same way, and reused until the contents are written; null the first time. Threads sharing a weight get one copy:
    /// packing happens under a lock, so none overwrites or frees a copy another was handed.
    /// </summary>
    public float* PackedAsMatMulB(bool transposed, long floats, Action<nint> pack)
    {
        lock (this)
        {
            if (packed is { } current && current.Version == Version && current.Transposed == transposed)
                return (float*)current.Buffer.Pointer;
            if (packCandidate != (Version, transposed))
            {
                packCandidate = (Version, transposed);
                return null;
            }
            DropPacked();
            var copy = new HostBuffer(floats * sizeof(float));
            pack((nint)copy.Pointer);
            backend.Track(copy.Bytes);
            packed = new Packed(copy, Version, transposed);
            return (float*)copy.Pointer;
        }
    }

    public override void Dispose()
    {
        var owned = Interlocked.Exchange(ref buffer, null);
        if (owned is null)
            return;
        if (Volatile.Read(ref packed) is not null)
        {
            lock (this)
                DropPacked();
        }
        backend.Return(owned);
    }

    private void DropPacked()
    {
        if (packed is not { } old)
            return;
        packed = null;
        old.Buffer.Dispose();
        backend.Track(-old.Buffer.Bytes);
    }

    private sealed record Packed(HostBuffer Buffer, long Version, bool Transposed);
}
