using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using GpuAttention.Kernels.Cpu;

namespace GpuAttention.Benchmarks;

/// <summary>
/// The CPU's fp32 peak as the managed kernels can reach it: every core runs 12 independent chains of vector
/// multiply-adds (enough to cover the FMA latency on both FMA pipes) with nothing else in the loop. The fraction
/// of peak in RESULTS.md is measured GFLOP/s divided by this figure, taken in the same session.
/// </summary>
[Config(typeof(Config))]
public class PeakFlopsBenchmarks
{
    private const long Iterations = 20_000_000;
    private const int Chains = 12;

    private sealed class Config : ManualConfig
    {
        public Config() => AddColumn(RateColumn.Gflops(_ => Flops, $"{Chains} FMA chains × vector width × 2 × iterations × cores"));
    }

    private static int Lanes => CpuFeatures.Vector512Paths ? Vector512<float>.Count : Vector256<float>.Count;

    private static double Flops => 2.0 * Chains * Lanes * Iterations * Environment.ProcessorCount;

    [Benchmark]
    public float FusedMultiplyAddPeak()
    {
        var sums = new float[Environment.ProcessorCount];
        Parallel.For(0, Environment.ProcessorCount, core =>
            sums[core] = CpuFeatures.Vector512Paths ? Chains512(Iterations) : Chains256(Iterations));
        return sums.Sum();
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Chains512(long iterations)
    {
        var x = Vector512.Create(0.9999999f);
        var y = Vector512.Create(1e-7f);
        Vector512<float> a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x, a10 = x, a11 = x;
        for (long i = 0; i < iterations; i++)
        {
            a0 = CpuVector.MultiplyAdd(a0, x, y); a1 = CpuVector.MultiplyAdd(a1, x, y);
            a2 = CpuVector.MultiplyAdd(a2, x, y); a3 = CpuVector.MultiplyAdd(a3, x, y);
            a4 = CpuVector.MultiplyAdd(a4, x, y); a5 = CpuVector.MultiplyAdd(a5, x, y);
            a6 = CpuVector.MultiplyAdd(a6, x, y); a7 = CpuVector.MultiplyAdd(a7, x, y);
            a8 = CpuVector.MultiplyAdd(a8, x, y); a9 = CpuVector.MultiplyAdd(a9, x, y);
            a10 = CpuVector.MultiplyAdd(a10, x, y); a11 = CpuVector.MultiplyAdd(a11, x, y);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Chains256(long iterations)
    {
        var x = Vector256.Create(0.9999999f);
        var y = Vector256.Create(1e-7f);
        Vector256<float> a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x, a10 = x, a11 = x;
        for (long i = 0; i < iterations; i++)
        {
            a0 = CpuVector.MultiplyAdd(a0, x, y); a1 = CpuVector.MultiplyAdd(a1, x, y);
            a2 = CpuVector.MultiplyAdd(a2, x, y); a3 = CpuVector.MultiplyAdd(a3, x, y);
            a4 = CpuVector.MultiplyAdd(a4, x, y); a5 = CpuVector.MultiplyAdd(a5, x, y);
            a6 = CpuVector.MultiplyAdd(a6, x, y); a7 = CpuVector.MultiplyAdd(a7, x, y);
            a8 = CpuVector.MultiplyAdd(a8, x, y); a9 = CpuVector.MultiplyAdd(a9, x, y);
            a10 = CpuVector.MultiplyAdd(a10, x, y); a11 = CpuVector.MultiplyAdd(a11, x, y);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }
}
