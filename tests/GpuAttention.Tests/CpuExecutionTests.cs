using GpuAttention.Kernels.Cpu;

namespace GpuAttention.Tests;

/// <summary>
/// The managed backend's parallel loops (CpuExecution.For on its worker team): every task runs exactly once, whatever the
/// count; a task's exception reaches the caller and leaves the team usable; a loop inside a task and loops from two
/// threads at once complete (they run on the thread pool while the team is busy).
/// </summary>
public sealed class CpuExecutionTests
{
    [Fact]
    public void EveryTaskRunsExactlyOnce()
    {
        using var execution = new CpuExecution(2, _ => { });
        foreach (int count in new[] { 1, 2, 3, 7, 64, 1000 })
        {
            for (int repeat = 0; repeat < 200; repeat++)
            {
                var runs = new int[count];
                execution.For(count, i => Interlocked.Increment(ref runs[i]));
                Assert.All(runs, r => Assert.Equal(1, r));
            }
        }
    }

    [Fact]
    public void ATaskExceptionReachesTheCallerAndTheTeamStaysUsable()
    {
        using var execution = new CpuExecution(2, _ => { });
        var error = Assert.Throws<InvalidOperationException>(() => execution.For(16, i =>
        {
            if (i == 5)
                throw new InvalidOperationException("task 5");
        }));
        Assert.Equal("task 5", error.Message);
        int sum = 0;
        execution.For(100, i => Interlocked.Add(ref sum, i));
        Assert.Equal(4950, sum);
    }

    [Fact]
    public void NestedLoopsAndLoopsFromTwoThreadsComplete()
    {
        using var execution = new CpuExecution(2, _ => { });
        var cells = new int[8 * 8];
        execution.For(8, i => execution.For(8, j => Interlocked.Increment(ref cells[i * 8 + j])));
        Assert.All(cells, c => Assert.Equal(1, c));

        var totals = new long[2];
        Parallel.For(0, 2, caller =>
        {
            for (int repeat = 0; repeat < 300; repeat++)
                execution.For(10, i => Interlocked.Add(ref totals[caller], i + 1));
        });
        Assert.Equal([300L * 55, 300L * 55], totals);
    }

    [Fact]
    public void AfterDisposeLoopsRunOnTheCallingThread()
    {
        var execution = new CpuExecution(2, _ => { });
        execution.Dispose();
        int caller = Environment.CurrentManagedThreadId, other = 0;
        execution.For(50, _ =>
        {
            if (Environment.CurrentManagedThreadId != caller)
                Interlocked.Increment(ref other);
        });
        Assert.Equal(0, other);
    }
}
