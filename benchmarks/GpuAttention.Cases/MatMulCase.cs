using GpuAttention.Weights;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Cases;

/// <summary>
/// C[M, N] = A[M, K]·B[K, N] (square shapes), or a Linear layer x[M, K]·Wᵀ + b with W in PyTorch's [N, K] layout;
/// 2·M·N·K FLOPs (the bias add is not counted).
/// </summary>
public sealed class MatMulCase(int m, int n, int k, bool linear, MatMulAlgorithm algorithm)
    : BenchCase("matmul", algorithm == MatMulAlgorithm.Auto ? (linear ? "linear" : "matmul") : $"{algorithm.ToString().ToLowerInvariant()}{(linear ? " linear" : "")}",
        $"{m}x{n}x{k}", linear ? m : n, "N of N×N×N (a Linear layer: its tokens M)", 2.0 * m * n * k, WorkUnit.Flops)
{
    public override double Check(ComputeDevice device)
    {
        const int rows = 67, columns = 45, depth = 71;
        var a = RandomData.Uniform(rows * depth, 4);
        var b = RandomData.Uniform(columns * depth, 5);
        var bias = RandomData.Uniform(columns, 6);
        double[] want = ReferenceOps.MatMul(a, b, null, 1, rows, columns, depth, transA: false, transB: linear,
            aBatched: false, bBatched: false, bias: linear ? bias : null);
        using var ta = device.Upload(a, rows, depth);
        using var tb = linear ? device.Upload(b, columns, depth) : device.Upload(b, depth, columns);
        using var tbias = device.Upload(bias, columns);
        using var tc = device.Allocate(rows, columns);
        MatMul.Multiply(ta, tb, tc, transposeB: linear, bias: linear ? tbias : null, algorithm: algorithm);
        return RelativeError(tc.ToArray(), want);
    }

    public override PreparedCase Prepare(ComputeDevice device)
    {
        var a = device.Upload(RandomData.Uniform(m * k, 1), m, k);
        var b = linear ? device.Upload(RandomData.Uniform(n * k, 2), n, k) : device.Upload(RandomData.Uniform(k * n, 2), k, n);
        var bias = linear ? device.Upload(RandomData.Uniform(n, 3), n) : null;
        var c = device.Allocate(m, n);
        return new PreparedCase(device, () => MatMul.Multiply(a, b, c, transposeB: linear, bias: bias, algorithm: algorithm),
            () =>
            {
                var tensors = new Dictionary<string, HostTensor> { ["a"] = PreparedCase.Host(a), ["b"] = PreparedCase.Host(b), ["output"] = PreparedCase.Host(c) };
                if (bias is not null)
                    tensors["bias"] = PreparedCase.Host(bias);
                return tensors;
            },
            [a, b, c, .. bias is null ? Array.Empty<IDisposable>() : [bias]]);
    }

    /// <inheritdoc />
    public override object Problem => new { op = "matmul", m, n, k, transposeB = linear, bias = linear };
}
