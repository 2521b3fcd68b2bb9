using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;
using GpuAttention.Weights;

namespace GpuAttention.Cases;

/// <summary>
/// C[M, N] = A[M, K]·B[K, N] (square shapes), or a Linear layer x[M, K]·Wᵀ + b with W in PyTorch's [N, K] layout;
/// 2·M·N·K FLOPs (the bias add is not counted). A and B are F32, or both F16 or both BF16 (fp32 accumulation, F32 C).
/// </summary>
public sealed class MatMulCase(int m, int n, int k, bool linear, MatMulAlgorithm algorithm, DType dtype = DType.F32)
    : BenchCase("matmul", VariantName(linear, algorithm, dtype), $"{m}x{n}x{k}", linear ? m : n,
        "N of N×N×N (a Linear layer: its tokens M)", 2.0 * m * n * k, WorkUnit.Flops)
{
    /// <summary>The 16-bit path at 67×45×71 (F32: the benchmarked algorithm), against the double-precision product of the operands' values.</summary>
    public override double Check(ComputeDevice device)
    {
        const int rows = 67, columns = 45, depth = 71;
        using var ta = Operand(device, dtype, RandomData.Uniform(rows * depth, 4), rows, depth);
        using var tb = linear ? Operand(device, dtype, RandomData.Uniform(columns * depth, 5), columns, depth)
            : Operand(device, dtype, RandomData.Uniform(columns * depth, 5), depth, columns);
        var bias = RandomData.Uniform(columns, 6);
        using var tbias = device.Upload(bias, columns);
        using var tc = device.Allocate(rows, columns);
        MatMul.Multiply(ta, tb, tc, transposeB: linear, bias: linear ? tbias : null, algorithm: algorithm);
        double[] want = ReferenceOps.MatMul(ta.ToArray(), tb.ToArray(), null, 1, rows, columns, depth, transA: false, transB: linear,
            aBatched: false, bBatched: false, bias: linear ? bias : null);
        return RelativeError(tc.ToArray(), want);
    }

    public override PreparedCase Prepare(ComputeDevice device)
    {
        var a = Operand(device, dtype, RandomData.Uniform(m * k, 1), m, k);
        var b = linear ? Operand(device, dtype, RandomData.Uniform(n * k, 2), n, k) : Operand(device, dtype, RandomData.Uniform(k * n, 2), k, n);
        var bias = linear ? device.Upload(RandomData.Uniform(n, 3), n) : null;
        var c = device.Allocate(m, n);
        return new PreparedCase(device, () => MatMul.Multiply(a, b, c, transposeB: linear, bias: bias, algorithm: algorithm),
            () =>
            {
                // 16-bit operands download as their exact float values.
                var tensors = new Dictionary<string, HostTensor> { ["a"] = PreparedCase.Host(a), ["b"] = PreparedCase.Host(b), ["output"] = PreparedCase.Host(c) };
                if (bias is not null)
                    tensors["bias"] = PreparedCase.Host(bias);
                return tensors;
            },
            [a, b, c, .. bias is null ? Array.Empty<IDisposable>() : [bias]]);
    }

    /// <inheritdoc />
    public override object Problem => new { op = "matmul", m, n, k, transposeB = linear, bias = linear, dtype = dtype.ToString().ToLowerInvariant() };

    /// <summary>e.g. <c>tiled</c>, <c>tiled linear</c>, <c>matmul</c> (the managed backend's one algorithm), <c>bf16 linear</c>.</summary>
    private static string VariantName(bool linear, MatMulAlgorithm algorithm, DType dtype)
    {
        string name = dtype != DType.F32 ? dtype.ToString().ToLowerInvariant()
            : algorithm == MatMulAlgorithm.Auto ? (linear ? "linear" : "matmul") : algorithm.ToString().ToLowerInvariant();
        return linear && name != "linear" ? name + " linear" : name;
    }

}
