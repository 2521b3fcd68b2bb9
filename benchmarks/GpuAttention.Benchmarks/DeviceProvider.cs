using GpuAttention.Runtime;

namespace GpuAttention.Benchmarks;

/// <summary>
/// The one <see cref="ComputeDevice"/> of this process, opened on first use: the kind named by
/// <c>GPUATTENTION_DEVICE</c>, else CUDA, then an OpenCL GPU, then the managed CPU backend. The BenchmarkDotNet host
/// process opens it too, because the <see cref="Sizes"/> (the <c>[ParamsSource]</c>s) depend on its kind.
/// </summary>
public static class DeviceProvider
{
    private static readonly Lazy<ComputeDevice> Instance = new(() => ComputeDevice.Create());

    /// <summary>The device every benchmark runs on.</summary>
    public static ComputeDevice Device => Instance.Value;

    /// <summary>Overrides the choice of <see cref="Sizes"/>: <c>small</c> or <c>full</c>.</summary>
    public const string SizesVariable = "GPUATTENTION_BENCH_SIZES";

    /// <summary>
    /// True for the small problem sizes: GPU kernels on CPU hardware (ILGPU's CPU accelerator, or an OpenCL CPU
    /// driver such as PoCL) unless <see cref="SizesVariable"/> says otherwise. The managed CPU backend gets the full sizes.
    /// </summary>
    public static bool SmallSizes => Environment.GetEnvironmentVariable(SizesVariable)?.Trim().ToLowerInvariant() switch
    {
        null or "" => Device.IsCpuHardware && !(Device.Kind == DeviceKind.ManagedCpu),
        "small" => true,
        "full" => false,
        var other => throw new ArgumentException($"{SizesVariable}='{other}' is neither 'small' nor 'full'.", SizesVariable),
    };
}

/// <summary>
/// Problem sizes by device: full sizes on a GPU (CUDA or OpenCL) and the managed CPU backend, small ones for GPU kernels on CPU hardware (see <see cref="DeviceProvider.SmallSizes"/>). benchmarks/README.md
/// lists both sets.
/// </summary>
public static class Sizes
{
    /// <summary>Square matmuls plus one Linear layer (x·Wᵀ + b, W in PyTorch's [out, in] layout).</summary>
    public static IEnumerable<MatMulShape> MatMul => DeviceProvider.SmallSizes
        ? [MatMulShape.Square(64), MatMulShape.Square(128), MatMulShape.Square(256), MatMulShape.Linear(64, 256, 128)]
        : [MatMulShape.Square(256), MatMulShape.Square(512), MatMulShape.Square(1024), MatMulShape.Square(2048),
           MatMulShape.Linear(512, 2048, 512)];

    /// <summary>Batch and heads of the softmax and attention problems.</summary>
    public static (int Batch, int Heads) BatchHeads => DeviceProvider.SmallSizes ? (1, 2) : (2, 8);

    /// <summary>Sequence lengths of the attention problems (Lq = Lk).</summary>
    public static IEnumerable<int> AttentionLengths => DeviceProvider.SmallSizes
        ? [64, 128, 256]
        : [128, 256, 512, 1024, 2048, 4096];

    /// <summary>Row length Lk of the [batch, heads, L, L] score tensors the softmax normalises.</summary>
    public static IEnumerable<int> SoftmaxLengths => DeviceProvider.SmallSizes ? [64, 128, 256] : [256, 1024, 4096];

    /// <summary>Rows (tokens) of the layer-norm input.</summary>
    public static IEnumerable<int> LayerNormRows => DeviceProvider.SmallSizes ? [256] : [8192];

    /// <summary>Widths (model dimensions) of the layer-norm input.</summary>
    public static IEnumerable<int> LayerNormWidths => DeviceProvider.SmallSizes ? [256, 1024] : [512, 1024, 4096];
}

/// <summary>C[M, N] = A[M, K]·B[K, N], or a Linear layer A·Bᵀ + bias with B as [N, K].</summary>
public sealed record MatMulShape(int M, int N, int K, bool IsLinear) : IComparable
{
    public static MatMulShape Square(int n) => new(n, n, n, false);

    /// <summary><paramref name="tokens"/> rows through a Linear layer <paramref name="inputs"/> → <paramref name="outputs"/>.</summary>
    public static MatMulShape Linear(int tokens, int outputs, int inputs) => new(tokens, outputs, inputs, true);

    /// <summary>2·M·N·K (the bias add is not counted).</summary>
    public double Flops => 2.0 * M * N * K;

    /// <summary>Orders the rows of the summary: square shapes by size, then the Linear layer.</summary>
    public int CompareTo(object? obj) =>
        obj is MatMulShape other ? (IsLinear, Flops).CompareTo((other.IsLinear, other.Flops)) : 1;

    /// <summary>M×N×K, e.g. <c>512x512x512</c> or <c>Linear 512x2048x512</c>.</summary>
    public override string ToString() => (IsLinear ? "Linear " : "") + $"{M}x{N}x{K}";
}
