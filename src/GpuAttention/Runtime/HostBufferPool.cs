namespace GpuAttention.Runtime;

/// <summary>
/// The managed backend's free buffers, by exact length: a model step allocates the same intermediate shapes every
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

    public HostBuffer Rent(long length)
    {
        lock (free)
        {
            if (free.TryGetValue(length, out var stack) && stack.TryPop(out var reused))
            {
                pooledBytes -= length * sizeof(float);
                return reused;
            }
        }
        return new HostBuffer(length);
    }

    public void Return(HostBuffer buffer)
    {
        long bytes = buffer.Length * sizeof(float);
        lock (free)
        {
            if (!disposed && pooledBytes + bytes <= MaxPooledBytes)
            {
                if (!free.TryGetValue(buffer.Length, out var stack))
                    free[buffer.Length] = stack = new Stack<HostBuffer>();
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
