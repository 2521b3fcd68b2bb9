using GpuAttention.Backends.Ilgpu;
using GpuAttention.Kernels;
using GpuAttention.Problems;
using GpuAttention.Reference;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAttention.Tests;

/// <summary>
/// The tensor-core GEMM kernel on every ILGPU device (tensor cores on CUDA, the primitives' portable bodies elsewhere)
/// against a double-precision product of the same 16-bit values: odd M, N and K (partial blocks and K steps), a batch with
/// B broadcast, α, β, bias and GELU, B stored either way.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class HalfMatMulTests
{
    /// <summary>
    /// Every device with the tensor-core kernel: bf16 and f16, B as stored and transposed (Linear weights); a transposed A in
    /// two of those (each specialisation costs PoCL ~10–40 s to compile, so not all four).
    /// </summary>
    public static TheoryData<string, string, bool, bool> Cases()
    {
        var data = new TheoryData<string, string, bool, bool>();
        foreach (string name in TestDevices.Names.Where(n => n != "cpu"))
        {
            foreach (string format in new[] { "bf16", "f16" })
            foreach (bool linear in new[] { false, true })
                data.Add(name, format, linear, false);
            data.Add(name, "bf16", true, true);
            data.Add(name, "f16", false, true);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void TensorCoreGemmMatchesAPlainReference(string deviceName, string format, bool linear, bool transposeA)
    {
        const int batch = 2, m = 67, n = 45, k = 71;
        bool bf16 = format == "bf16";
        ushort[] a = SixteenBit.Bits(RandomData.Uniform(batch * m * k, 51, 2f), bf16), b = SixteenBit.Bits(RandomData.Uniform(k * n, 52, 2f), bf16);
        float[] c = RandomData.Uniform(batch * m * n, 53, 4f), bias = RandomData.Uniform(n, 54);
        var p = new MatMulProblem
        {
            Batch = batch, M = m, N = n, K = k, Lda = transposeA ? m : k, Ldb = linear ? k : n, Ldc = n,
            BatchStrideA = (long)m * k, BatchStrideB = 0, BatchStrideC = (long)m * n,
            TransA = transposeA ? 1 : 0, TransB = linear ? 1 : 0, Alpha = 0.5f, Beta = 0.25f, HasBias = 1, Activation = (int)Activation.Gelu,
        };

        var device = TestDevices.Get(deviceName);
        var accelerator = ((IlgpuBackend)device.Backend).Accelerator;
        var kernel = (bf16, transposeA, linear) switch
        {
            (true, false, false) => Load<Bf16Mma, MMajorA, KMajorB>(accelerator),
            (true, false, true) => Load<Bf16Mma, MMajorA, NMajorB>(accelerator),
            (true, true, false) => Load<Bf16Mma, KMajorA, KMajorB>(accelerator),
            (true, true, true) => Load<Bf16Mma, KMajorA, NMajorB>(accelerator),
            (false, false, false) => Load<F16Mma, MMajorA, KMajorB>(accelerator),
            (false, false, true) => Load<F16Mma, MMajorA, NMajorB>(accelerator),
            (false, true, false) => Load<F16Mma, KMajorA, KMajorB>(accelerator),
            (false, true, true) => Load<F16Mma, KMajorA, NMajorB>(accelerator),
        };
        using var da = accelerator.Allocate1D(a);
        using var db = accelerator.Allocate1D(b);
        using var dc = accelerator.Allocate1D(c);
        using var dbias = accelerator.Allocate1D(bias);
        var config = new KernelConfig(
            new Index3D((n + HalfMatMulKernels.BlockN - 1) / HalfMatMulKernels.BlockN, (m + HalfMatMulKernels.BlockM - 1) / HalfMatMulKernels.BlockM, batch),
            new Index3D(HalfMatMulKernels.Threads, 1, 1),
            SharedMemoryConfig.RequestDynamic<byte>(HalfMatMulKernels.SharedBytes(onCuda: accelerator.AcceleratorType == AcceleratorType.Cuda)));
        kernel(config, da.View, db.View, dc.View, dbias.View, p);
        float[] got = dc.GetAsArray1D();

        for (int t = 0; t < batch; t++)
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double dot = 0, magnitude = 0;
            for (int q = 0; q < k; q++)
            {
                // op(A)[i, q]: A stored [M, K], or [K, M] when transposed.
                ushort aBits = transposeA ? a[t * m * k + q * m + i] : a[t * m * k + i * k + q];
                double product = SixteenBit.Value(aBits, bf16) * SixteenBit.Value(linear ? b[j * k + q] : b[q * n + j], bf16);
                dot += product;
                magnitude += Math.Abs(product);
            }
            int at = t * m * n + i * n + j;
            double preActivation = 0.5 * dot + 0.25 * c[at] + bias[j];
            double want = ReferenceOps.Gelu(preActivation);
            double tolerance = 1e-5 * (0.5 * magnitude + Math.Abs(0.25 * c[at]) + Math.Abs(bias[j])) + 1e-5 * Math.Abs(want) + 1e-6;
            Assert.True(Math.Abs(got[at] - want) <= tolerance,
                $"[{t}, {i}, {j}]: got {got[at]}, want {want} (difference {Math.Abs(got[at] - want):E2}, tolerance {tolerance:E2})");
        }
    }

    private static Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, MatMulProblem> Load<TFormat, TOperandA, TOperandB>(
        Accelerator accelerator)
        where TFormat : struct, IMmaFormat
        where TOperandA : struct, IHalfGemmOperandA
        where TOperandB : struct, IHalfGemmOperandB =>
        accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, MatMulProblem>(
            HalfMatMulKernels.TensorCore<TFormat, TOperandA, TOperandB>);
}
