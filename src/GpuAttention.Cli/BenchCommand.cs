using System.CommandLine;
using System.Diagnostics;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;
using Spectre.Console;

namespace GpuAttention.Cli;

/// <summary>
/// <c>bench</c>: the quick look before the full BenchmarkDotNet run. Each kernel is first checked against the
/// double-precision reference on a small problem with the device's launch profile, then timed (kernel time only:
/// inputs are uploaded and kernels compiled before the clock starts, and the device is synchronised around each call).
/// </summary>
internal static class BenchCommand
{
    private sealed record Case(string Kernel, string Shape, Func<ComputeDevice, double> Check, Func<ComputeDevice, Prepared> Prepare,
        double Work, string Unit);

    public static Command Create(Option<string?> deviceOption)
    {
        var seconds = new Option<double>("--seconds") { Description = "Time spent measuring each kernel", DefaultValueFactory = _ => 1.0 };
        var command = new Command("bench", "Check each kernel against the reference, then time it") { seconds, deviceOption };
        command.SetAction(result =>
        {
            using var device = DeviceChoice.Open(result.GetValue(deviceOption));
            var table = new Table().AddColumns("kernel", "shape", "check (max |err|)", "ms", "throughput");
            bool allPassed = true;
            AnsiConsole.Status().Start("starting", status =>
            {
                foreach (var c in Cases(device))
                {
                    status.Status($"{c.Kernel} {c.Shape}: checking");
                    double error = c.Check(device);
                    bool ok = error <= 1e-3;
                    allPassed &= ok;
                    status.Status($"{c.Kernel} {c.Shape}: timing");
                    double ms = double.NaN;
                    if (ok)
                    {
                        using var prepared = c.Prepare(device);
                        ms = Time(device, prepared.Run, result.GetValue(seconds));
                    }
                    table.AddRow(c.Kernel, c.Shape, ok ? $"[green]ok[/] ({error:E1})" : $"[red]FAIL[/] ({error:E1})",
                        ok ? $"{ms:F3}" : "-", ok ? $"{c.Work / (ms * 1e-3) / 1e9:F2} {c.Unit}" : "-");
                }
            });
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(device.ToString())}[/]" + (SmallSizes(device)
                ? " — CPU hardware running GPU kernels: small sizes; these figures say nothing about a GPU."
                : (device.Kind == DeviceKind.ManagedCpu) ? " — the managed CPU backend; benchmarks/ compares it with ONNX Runtime." : ""));
            AnsiConsole.Write(table);
            return allPassed ? 0 : 1;
        });
        return command;
    }

    /// <summary>A timed call and the tensors it owns until the case is done.</summary>
    private sealed class Prepared(Action run, params DeviceTensor[] owned) : IDisposable
    {
        public Action Run { get; } = run;

        public void Dispose()
        {
            foreach (var tensor in owned)
                tensor.Dispose();
        }
    }

    private static double Time(ComputeDevice device, Action run, double seconds)
    {
        run();
        device.Synchronize();
        int iterations = 0;
        var clock = Stopwatch.StartNew();
        do
        {
            run();
            device.Synchronize();
            iterations++;
        }
        while (clock.Elapsed.TotalSeconds < seconds || iterations < 3);
        return clock.Elapsed.TotalMilliseconds / iterations;
    }

    /// <summary>GPU kernels on CPU hardware (ILGPU's simulator, PoCL) get small problems; a GPU and the managed backend full ones.</summary>
    private static bool SmallSizes(ComputeDevice device) => device.IsCpuHardware && !(device.Kind == DeviceKind.ManagedCpu);

    private static IEnumerable<Case> Cases(ComputeDevice device)
    {
        bool gpu = !device.IsCpuHardware, full = !SmallSizes(device);
        // The managed backend has one matmul; the ILGPU kernels compare their two.
        var algorithms = (device.Kind == DeviceKind.ManagedCpu) ? [MatMulAlgorithm.Auto] : new[] { MatMulAlgorithm.Naive, MatMulAlgorithm.Tiled };
        foreach (var (m, n, k) in full ? [(1024, 1024, 1024), (2048, 2048, 2048), (512, 2048, 512)] : new[] { (128, 128, 128) })
        foreach (var algorithm in algorithms)
            yield return new Case(algorithm == MatMulAlgorithm.Auto ? "matmul" : $"matmul {algorithm.ToString().ToLowerInvariant()}", $"{m}×{n}×{k}",
                d => CheckMatMul(d, algorithm), d => PrepareMatMul(d, m, n, k, algorithm), 2.0 * m * n * k, "GFLOP/s");

        var (rows, cols) = full ? (8192, 1024) : (64, 512);
        yield return new Case("softmax causal", $"{rows}×{cols}", CheckSoftmax, d => PrepareSoftmax(d, rows, cols),
            2.0 * rows * cols * sizeof(float), "GB/s");
        yield return new Case("layer norm + residual", $"{rows}×{cols}", CheckLayerNorm, d => PrepareLayerNorm(d, rows, cols),
            4.0 * rows * cols * sizeof(float), "GB/s");

        var (batch, heads) = gpu ? (4, 8) : full ? (1, 8) : (1, 2);
        foreach (int length in gpu ? [1024, 4096] : full ? [256, 1024] : new[] { 128 })
        foreach (int headDim in gpu ? [64, 128] : new[] { 64 })
        foreach (bool causal in new[] { false, true })
        foreach (bool fused in new[] { true, false })
        {
            double flops = 4.0 * batch * heads * length * length * headDim * (causal ? 0.5 : 1.0);
            yield return new Case($"attention {(fused ? "fused" : "unfused")}{(causal ? " causal" : "")}",
                $"B{batch} H{heads} L{length} d{headDim}", d => CheckAttention(d, headDim, causal, fused),
                d => PrepareAttention(d, batch, heads, length, headDim, causal, fused), flops, "GFLOP/s");
        }
    }

    private static float[] Random(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
    }

    private static double MaxError(double[] want, float[] got) => want.Zip(got, (w, g) => Math.Abs(w - g)).Max();

    private static double CheckMatMul(ComputeDevice device, MatMulAlgorithm algorithm)
    {
        const int m = 67, n = 45, k = 53;
        var a = Random(m * k, 1);
        var b = Random(k * n, 2);
        using var ta = device.Upload(a, m, k);
        using var tb = device.Upload(b, k, n);
        using var tc = device.Allocate(m, n);
        MatMul.Multiply(ta, tb, tc, algorithm: algorithm);
        return MaxError(ReferenceOps.MatMul(a, b, null, 1, m, n, k, false, false, false, false), tc.ToArray());
    }

    private static Prepared PrepareMatMul(ComputeDevice device, int m, int n, int k, MatMulAlgorithm algorithm)
    {
        var a = device.Upload(Random(m * k, 3), m, k);
        var b = device.Upload(Random(k * n, 4), k, n);
        var c = device.Allocate(m, n);
        return new Prepared(() => MatMul.Multiply(a, b, c, algorithm: algorithm), a, b, c);
    }

    private static double CheckSoftmax(ComputeDevice device)
    {
        const int lq = 9, lk = 301;
        var x = Random(lq * lk, 5);
        using var tx = device.Upload(x, lq, lk);
        using var ty = device.Allocate(lq, lk);
        Softmax.Apply(tx, ty, AttentionMask.Causal);
        return MaxError(ReferenceOps.Softmax(x, 1, 1, lq, lk, new ReferenceMask { Right = 0 }, 1.0), ty.ToArray());
    }

    private static Prepared PrepareSoftmax(ComputeDevice device, int rows, int cols)
    {
        var x = device.Upload(Random(rows * cols, 6), rows, cols);
        var y = device.Allocate(rows, cols);
        return new Prepared(() => Softmax.Apply(x, y, AttentionMask.Causal), x, y);
    }

    private static double CheckLayerNorm(ComputeDevice device)
    {
        const int rows = 7, width = 515;
        var x = Random(rows * width, 7);
        var r = Random(rows * width, 8);
        var g = Random(width, 9);
        var b = Random(width, 10);
        using var tx = device.Upload(x, rows, width);
        using var tr = device.Upload(r, rows, width);
        using var tg = device.Upload(g, width);
        using var tb = device.Upload(b, width);
        using var ty = device.Allocate(rows, width);
        LayerNorm.Apply(tx, tg, tb, ty, 1e-5f, tr);
        return MaxError(ReferenceOps.LayerNorm(x, r, g, b, width, 1e-5), ty.ToArray());
    }

    private static Prepared PrepareLayerNorm(ComputeDevice device, int rows, int width)
    {
        var x = device.Upload(Random(rows * width, 11), rows, width);
        var r = device.Upload(Random(rows * width, 12), rows, width);
        var g = device.Upload(Random(width, 13), width);
        var b = device.Upload(Random(width, 14), width);
        var y = device.Allocate(rows, width);
        return new Prepared(() => LayerNorm.Apply(x, g, b, y, 1e-5f, r), x, r, g, b, y);
    }

    private static double CheckAttention(ComputeDevice device, int headDim, bool causal, bool fused)
    {
        const int batch = 1, heads = 2, lq = 37, lk = 53;
        var q = Random(batch * heads * lq * headDim, 15);
        var k = Random(batch * heads * lk * headDim, 16);
        var v = Random(batch * heads * lk * headDim, 17);
        using var tq = device.Upload(q, batch, heads, lq, headDim);
        using var tk = device.Upload(k, batch, heads, lk, headDim);
        using var tv = device.Upload(v, batch, heads, lk, headDim);
        using var to = device.Allocate(batch, heads, lq, headDim);
        var mask = causal ? AttentionMask.Causal : AttentionMask.None;
        if (fused)
            Attention.Fused(tq, tk, tv, to, mask);
        else
            Attention.Unfused(tq, tk, tv, to, mask);
        var reference = ReferenceOps.Attention(q, k, v, batch, heads, lq, lk, headDim,
            new ReferenceMask { Right = causal ? 0 : null }, 1.0 / Math.Sqrt(headDim));
        return MaxError(reference.Output, to.ToArray());
    }

    private static Prepared PrepareAttention(ComputeDevice device, int batch, int heads, int length, int headDim, bool causal, bool fused)
    {
        int count = batch * heads * length * headDim;
        var q = device.Upload(Random(count, 18), batch, heads, length, headDim);
        var k = device.Upload(Random(count, 19), batch, heads, length, headDim);
        var v = device.Upload(Random(count, 20), batch, heads, length, headDim);
        var o = device.Allocate(batch, heads, length, headDim);
        var mask = causal ? AttentionMask.Causal : AttentionMask.None;
        Action run = fused ? () => Attention.Fused(q, k, v, o, mask) : () => Attention.Unfused(q, k, v, o, mask);
        return new Prepared(run, q, k, v, o);
    }
}
