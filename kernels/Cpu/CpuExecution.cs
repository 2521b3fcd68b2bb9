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
public sealed unsafe class CpuExecution(int threads, Action<long> trackScratch) : IDisposable
{
    private const int Slots = 3;

    /// <summary>This thread's scratch buffers: one thread-static object, so a rent costs one thread-local lookup.</summary>
    [ThreadStatic] private static ThreadScratch? scratch;

    private readonly WorkerTeam? team = threads > 1 ? new WorkerTeam(threads) : null;

    /// <summary>Threads an op may use.</summary>
    public int Threads { get; } = threads;

    /// <summary>
    /// True when work of this many multiply-adds (or element updates) is worth spreading over the threads: handing a loop
    /// to the thread pool cost ~15–20 µs here, in which one core does about a million multiply-adds — as many as a
    /// decoding step of a small model needs per op. (The <see cref="WorkerTeam"/> forks faster while its workers spin,
    /// but a loop after an idle pause still wakes blocked threads.)
    /// </summary>
    public bool Worthwhile(long operations) => Threads > 1 && operations >= 1 << 20;

    /// <summary>
    /// Runs <paramref name="body"/> for tasks 0 … count − 1: inline when there is one task, one thread or
    /// <paramref name="parallel"/> is false, else on the device's <see cref="WorkerTeam"/> with dynamic partitioning, so
    /// uneven tasks (e.g. causal tiles) balance.
    /// </summary>
    public void For(int count, Action<int> body, bool parallel = true)
    {
        if (count <= 0)
            return;
        if (count == 1 || team is null || !parallel)
        {
            for (int i = 0; i < count; i++)
                body(i);
            return;
        }
        team.For(count, body);
    }

    /// <summary>Stops the worker threads; a later loop runs on the calling thread alone.</summary>
    public void Dispose() => team?.Dispose();

    /// <summary>
    /// At least <paramref name="floats"/> floats of this thread's <paramref name="slot"/>, 64-byte aligned (vector loads
    /// never split a cache line), contents undefined, counted as device memory until disposed. A thread holds each slot
    /// at most once at a time.
    /// </summary>
    public Scratch Rent(ScratchSlot slot, long floats)
    {
        var mine = scratch ??= new ThreadScratch();
        int i = (int)slot;
        if (mine.InUse[i])
            throw new InvalidOperationException($"Scratch slot {slot} is already held by this thread.");
        if (mine.Capacities[i] < floats)
        {
            long grown = Math.Max(floats, mine.Capacities[i] * 2);
            if (mine.Buffers[i] != 0)
                NativeMemory.AlignedFree((void*)mine.Buffers[i]);
            mine.Buffers[i] = 0;
            mine.Capacities[i] = 0;
            mine.Buffers[i] = (nint)NativeMemory.AlignedAlloc((nuint)(grown * sizeof(float)), 64);
            mine.Capacities[i] = grown;
        }
        mine.InUse[i] = true;
        long bytes = floats * sizeof(float);
        trackScratch(bytes);
        return new Scratch(mine, (float*)mine.Buffers[i], slot, bytes, trackScratch);
    }

    internal sealed class ThreadScratch
    {
        public readonly nint[] Buffers = new nint[Slots];
        public readonly long[] Capacities = new long[Slots];
        public readonly bool[] InUse = new bool[Slots];
    }

    /// <summary>A held scratch buffer; disposing it gives the slot back and stops counting its bytes.</summary>
    public readonly ref struct Scratch
    {
        private readonly ThreadScratch owner;
        private readonly ScratchSlot slot;
        private readonly long bytes;
        private readonly Action<long> track;

        internal Scratch(ThreadScratch owner, float* pointer, ScratchSlot slot, long bytes, Action<long> track)
        {
            this.owner = owner;
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
            owner.InUse[(int)slot] = false;
            track(-bytes);
        }
    }
}
