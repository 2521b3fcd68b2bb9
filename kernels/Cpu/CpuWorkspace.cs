using System.Runtime.InteropServices;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// Per-thread scratch memory of the managed kernels (packed panels, tiles, online-softmax state): grown on demand,
/// kept for the thread's life and reused by every later call, so hot paths allocate nothing. 64-byte aligned so
/// vector loads never split a cache line. Each caller uses its own <see cref="Slot"/>; a slot's memory is valid
/// until the same thread asks for that slot again.
/// </summary>
public static unsafe class CpuWorkspace
{
    /// <summary>Independent buffers one thread may hold at once.</summary>
    public enum Slot
    {
        /// <summary>The packed B panels of a matmul (shared by the threads of one call).</summary>
        PackedB,
        /// <summary>A thread's packed A block of a matmul.</summary>
        PackedA,
        /// <summary>A thread's output tile, or an attention task's tiles.</summary>
        Tile,
    }

    private const int Slots = 3;

    [ThreadStatic] private static nint[]? buffers;
    [ThreadStatic] private static long[]? capacities;

    /// <summary>At least <paramref name="floats"/> floats of this thread's <paramref name="slot"/>; contents undefined.</summary>
    public static float* Get(Slot slot, long floats)
    {
        buffers ??= new nint[Slots];
        capacities ??= new long[Slots];
        int i = (int)slot;
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
        return (float*)buffers[i];
    }
}
