namespace GpuAttention.Backends.Managed;

/// <summary>
/// The managed backend's free buffers, by exact byte length: a model step allocates the same intermediate shapes every
/// time, so after the first step each allocation is a reuse — no malloc, no fresh pages to fault in, and no GC
/// memory-pressure bookkeeping, which otherwise cost ~15% of an encoder layer. At most <see cref="MaxPooledBytes"/>
/// are kept; beyond that, returned buffers are freed.
/// </summary>
internal sealed class HostBufferPool : IDisposable
{
    public const long MaxPooledBytes = 256L << 20;

    private readonly Dictionary<long, Stack<HostBuffer>> free = [];
    private long pooledBytes;
    private bool disposed;

    public HostBuffer Rent(long bytes)
    {
        lock (free)
        {
            if (free.TryGetValue(bytes, out var stack) && stack.TryPop(out var reused))
            {
                pooledBytes -= bytes;
                return reused;
            }
        }
        return new HostBuffer(bytes);
    }

    public void Return(HostBuffer buffer)
    {
        long bytes = buffer.Bytes;
        lock (free)
        {
            if (!disposed && pooledBytes + bytes <= MaxPooledBytes)
            {
                if (!free.TryGetValue(bytes, out var stack))
                    free[bytes] = stack = new Stack<HostBuffer>();
                stack.Push(buffer);
                pooledBytes += bytes;
                return;
            }
        }
        buffer.Dispose();
    }

    public void Dispose()
    {
        lock (free)
        {
            disposed = true;
            foreach (var buffer in free.Values.SelectMany(stack => stack))
                buffer.Dispose();
            free.Clear();
            pooledBytes = 0;
        }
    }
}
