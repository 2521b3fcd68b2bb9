using System.Runtime.InteropServices;

namespace GpuAttention.Kernels.Cpu;

/// <summary>Independent scratch buffers one thread may hold at once.</summary>
public enum ScratchSlot
{
    /// <summary>The packed B panels of a matmul (shared by the threads of one call).</summary>
    PackedB,
    /// <summary>A thread's packed A block of a matmul.</summary>
    PackedA,
    /// <summary>A thread's output tile, an attention task's tiles, or a row's scores.</summary>
    Tile,
}

/// <summary>
/// How the managed kernels of one device run: how many threads they spread over (the thread policy), and the scratch
/// memory they use. Scratch comes from per-thread buffers that are grown on demand and then reused, so hot paths
/// allocate nothing; while a kernel holds a <see cref="Scratch"/>, its bytes count as the device's memory in use
/// (through the callback the device gives), so a kernel that needs a large buffer shows it in the device's accounting.
/// </summary>
public sealed unsafe class CpuExecution(int threads, Action<long> trackScratch)
{
    private const int Slots = 3;

    [ThreadStatic] private static nint[]? buffers;
    [ThreadStatic] private static long[]? capacities;
    [ThreadStatic] private static bool[]? inUse;

    private readonly ParallelOptions options = new() { MaxDegreeOfParallelism = threads };

    /// <summary>Threads an op may use.</summary>
    public int Threads { get; } = threads;

    /// <summary>
    /// True when work of this many multiply-adds (or element updates) is worth handing to the thread pool: a parallel
    /// loop costs ~15–20 µs to start here, in which one core does about a million multiply-adds — as many as a decoding
    /// step of a small model needs per op.
    /// </summary>
    public bool Worthwhile(long operations) => Threads > 1 && operations >= 1 << 20;

    /// <summary>
    /// Runs <paramref name="body"/> for tasks 0 … count − 1: inline when there is one task, one thread or
    /// <paramref name="parallel"/> is false, else on the thread pool with dynamic partitioning, so uneven tasks (e.g.
    /// causal tiles) balance.
    /// </summary>
    public void For(int count, Action<int> body, bool parallel = true)
    {
        if (count <= 0)
            return;
        if (count == 1 || Threads == 1 || !parallel)
        {
            for (int i = 0; i < count; i++)
                body(i);
            return;
        }
        Parallel.For(0, count, options, body);
    }

    /// <summary>
    /// At least <paramref name="floats"/> floats of this thread's <paramref name="slot"/>, 64-byte aligned (vector loads
    /// never split a cache line), contents undefined, counted as device memory until disposed. A thread holds each slot
    /// at most once at a time.
    /// </summary>
    public Scratch Rent(ScratchSlot slot, long floats)
    {
        buffers ??= new nint[Slots];
        capacities ??= new long[Slots];
        inUse ??= new bool[Slots];
        int i = (int)slot;
        if (inUse[i])
            throw new InvalidOperationException($"Scratch slot {slot} is already held by this thread.");
        if (capacities[i] < floats)
        {
            long grown = Math.Max(floats, capacities[i] * 2);
            if (buffers[i] != 0)
                NativeMemory.AlignedFree((void*)buffers[i]);
            buffers[i] = 0;
            capacities[i] = 0;
            buffers[i] = (nint)NativeMemory.AlignedAlloc((nuint)(grown * sizeof(float)), 64);
            capacities[i] = grown;
        }
        inUse[i] = true;
        long bytes = floats * sizeof(float);
        trackScratch(bytes);
        return new Scratch((float*)buffers[i], slot, bytes, trackScratch);
    }

    /// <summary>A held scratch buffer; disposing it gives the slot back and stops counting its bytes.</summary>
    public readonly ref struct Scratch
    {
        private readonly ScratchSlot slot;
        private readonly long bytes;
        private readonly Action<long> track;

        internal Scratch(float* pointer, ScratchSlot slot, long bytes, Action<long> track)
        {
            Pointer = pointer;
            this.slot = slot;
            this.bytes = bytes;
            this.track = track;
        }

        /// <summary>The first float.</summary>
        public float* Pointer { get; }

        /// <summary>Gives the slot back.</summary>
        public void Dispose()
        {
            inUse![(int)slot] = false;
            track(-bytes);
        }
    }
}
