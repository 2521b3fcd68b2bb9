namespace GpuAttention.Kernels.Cpu;

/// <summary>Spreads a kernel's independent tasks over the cores.</summary>
public static class CpuParallel
{
    private static readonly ParallelOptions Options = new() { MaxDegreeOfParallelism = Environment.ProcessorCount };

    /// <summary>Worker threads an op may use.</summary>
    public static int Threads => Environment.ProcessorCount;

    /// <summary>
    /// True when work of this many multiply-adds (or element updates) is worth handing to the thread pool: a parallel
    /// loop costs ~15–20 µs to start here, in which one core does about a million multiply-adds — as many as a decoding
    /// step of a small model needs per op.
    /// </summary>
    public static bool Worthwhile(long operations) => Threads > 1 && operations >= 1 << 20;

    /// <summary>
    /// Runs <paramref name="body"/> for tasks 0 … count − 1: inline when there is one task (or one core), else on the
    /// thread pool with dynamic partitioning, so uneven tasks (e.g. causal tiles) balance.
    /// </summary>
    public static void For(int count, Action<int> body, bool parallel = true)
    {
        if (count <= 0)
            return;
        if (count == 1 || Threads == 1 || !parallel)
        {
            for (int i = 0; i < count; i++)
                body(i);
            return;
        }
        Parallel.For(0, count, Options, body);
    }
}
