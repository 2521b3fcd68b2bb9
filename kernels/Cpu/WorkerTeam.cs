using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// A fixed team of worker threads that run one parallel loop at a time with the calling thread: the fork costs one
/// write the spinning workers see (~1 µs) instead of the thread pool's task start and semaphore wake-up (~15–50 µs a
/// loop, measured as <c>sched_yield</c> and <c>LowLevelLifoSemaphore.Wait</c> in the profile of a 16-token BERT
/// sentence, which runs ~40 parallel loops). Workers spin for <see cref="SpinTicks"/> (0.2 ms) after a loop — the gap
/// between one op and the next — and then block, so an idle device holds no core.
/// Tasks are handed out one at a time from a shared counter (dynamic partitioning, as <see cref="Parallel.For(int, int, Action{int})"/>).
/// One loop at a time: a loop started while the team is busy (another thread sharing the device, or a loop inside a
/// task) runs on the thread pool instead.
/// </summary>
internal sealed class WorkerTeam : IDisposable
{
    /// <summary>How long an idle worker spins before blocking.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 5000;

    /// <summary>The loop workers see when the team stops.</summary>
    private static readonly Loop Stop = new(_ => { }, 0);

    private readonly Thread[] workers;
    private readonly object gate = new();
    private readonly ParallelOptions fallback;
    private int busy;
    private int sleepers;
    private bool stopped;

    /// <summary>
    /// The latest loop. Workers take tasks from the loop object they saw, so a worker that wakes late finds that loop's
    /// tasks all taken and can never run a task of a later loop under an earlier loop's body.
    /// </summary>
    private Loop? latest;

    /// <summary>A team of <paramref name="threads"/> − 1 workers plus the calling thread.</summary>
    public WorkerTeam(int threads)
    {
        fallback = new ParallelOptions { MaxDegreeOfParallelism = threads };
        workers = new Thread[threads - 1];
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = new Thread(Work) { IsBackground = true, Name = $"GpuAttention managed CPU worker {i + 1}" };
            workers[i].Start();
        }
    }

    /// <summary>Runs body(0) … body(tasks − 1) on the team and returns when all have finished; rethrows a task's exception.</summary>
    public void For(int tasks, Action<int> body)
    {
        if (Volatile.Read(ref stopped))
        {
            for (int i = 0; i < tasks; i++)
                body(i);
            return;
        }
        if (Interlocked.CompareExchange(ref busy, 1, 0) != 0)
        {
            Parallel.For(0, tasks, fallback, body);
            return;
        }
        try
        {
            var loop = new Loop(body, tasks);
            Publish(loop);
            loop.Run();
            var spin = new SpinWait();
            while (Volatile.Read(ref loop.Unfinished) > 0)
                spin.SpinOnce(sleep1Threshold: -1);
            loop.Failure?.Throw();
        }
        finally
        {
            Volatile.Write(ref busy, 0);
        }
    }

    /// <summary>Stops the workers; later loops run on the calling thread.</summary>
    public void Dispose()
    {
        Volatile.Write(ref stopped, true);
        Publish(Stop);
    }

    /// <summary>
    /// Makes <paramref name="loop"/> the latest and wakes blocked workers. The exchange is a full fence, so either a worker
    /// about to block sees the new loop, or this sees it counted among the sleepers (see <see cref="WaitForLoop"/>).
    /// </summary>
    private void Publish(Loop loop)
    {
        Interlocked.Exchange(ref latest, loop);
        if (Volatile.Read(ref sleepers) > 0)
        {
            lock (gate)
                Monitor.PulseAll(gate);
        }
    }

    private void Work()
    {
        Loop? seen = null;
        while (true)
        {
            seen = WaitForLoop(seen);
            if (ReferenceEquals(seen, Stop))
                return;
            seen.Run();
        }
    }

    /// <summary>Spins, then blocks, until a loop other than <paramref name="seen"/> is published; returns it.</summary>
    private Loop WaitForLoop(Loop? seen)
    {
        long deadline = Stopwatch.GetTimestamp() + SpinTicks;
        var spin = new SpinWait();
        while (true)
        {
            var current = Volatile.Read(ref latest);
            if (current is not null && !ReferenceEquals(current, seen))
                return current;
            if (Stopwatch.GetTimestamp() < deadline)
            {
                spin.SpinOnce(sleep1Threshold: -1);
                continue;
            }
            lock (gate)
            {
                Interlocked.Increment(ref sleepers);
                while ((current = Volatile.Read(ref latest)) is null || ReferenceEquals(current, seen))
                    Monitor.Wait(gate);
                Interlocked.Decrement(ref sleepers);
            }
            return current;
        }
    }

    /// <summary>One parallel loop: its body, the next task to hand out and the tasks not yet finished.</summary>
    private sealed class Loop(Action<int> body, int tasks)
    {
        private readonly int count = tasks;
        public int Next;
        public int Unfinished = tasks;
        public ExceptionDispatchInfo? Failure;

        /// <summary>Takes and runs tasks until none are left.</summary>
        public void Run()
        {
            int task;
            while ((task = Interlocked.Increment(ref Next) - 1) < count)
            {
                try
                {
                    body(task);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref Failure, ExceptionDispatchInfo.Capture(e), null);
                }
                Interlocked.Decrement(ref Unfinished);
            }
        }
    }
}
