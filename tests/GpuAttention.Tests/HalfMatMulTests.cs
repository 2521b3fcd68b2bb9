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

    public static TheoryData<string> IlgpuDevices() => [.. TestDevices.Names.Where(n => n != "cpu")];

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
        var config = Launch(accelerator, p);
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

    /// <summary>
    /// The kernel's 16-bit C (the specialisation CUDA runs for a BF16 or F16 C): β reads C's 16-bit values exactly and the
    /// fp32 epilogue's result is rounded once to nearest-even — within the fp32 tolerance plus half an ulp (relative 2⁻⁸ for
    /// bf16, 2⁻¹¹ for f16). One specialisation per device (bf16, Linear B): PoCL compiles each for ~10–40 s.
    /// </summary>
    [Theory]
    [MemberData(nameof(IlgpuDevices))]
    public void TensorCoreGemmRoundsIntoASixteenBitC(string deviceName)
    {
        const int batch = 2, m = 67, n = 45, k = 71;
        ushort[] a = SixteenBit.Bits(RandomData.Uniform(batch * m * k, 55, 2f), true), b = SixteenBit.Bits(RandomData.Uniform(n * k, 56, 2f), true);
        ushort[] c = SixteenBit.Bits(RandomData.Uniform(batch * m * n, 57, 4f), true);
        float[] bias = RandomData.Uniform(n, 58);
        var p = new MatMulProblem
        {
            Batch = batch, M = m, N = n, K = k, Lda = k, Ldb = k, Ldc = n, BatchStrideA = (long)m * k, BatchStrideB = 0, BatchStrideC = (long)m * n,
            TransB = 1, Alpha = 0.5f, Beta = 0.25f, HasBias = 1, Activation = (int)Activation.Gelu,
        };
        var accelerator = ((IlgpuBackend)TestDevices.Get(deviceName).Backend).Accelerator;
        var kernel = accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, SixteenBitGemmOutput<F32ToBF16, BF16ToF32>, ArrayView<float>, MatMulProblem>(
            HalfMatMulKernels.TensorCore<Bf16Mma, MMajorA, NMajorB, SixteenBitGemmOutput<F32ToBF16, BF16ToF32>>);
        using var da = accelerator.Allocate1D(a);
        using var db = accelerator.Allocate1D(b);
        using var dc = accelerator.Allocate1D(c);
        using var dbias = accelerator.Allocate1D(bias);
        var config = Launch(accelerator, p);
        kernel(config, da.View, db.View, new SixteenBitGemmOutput<F32ToBF16, BF16ToF32> { Values = dc.View }, dbias.View, p);
        ushort[] got = dc.GetAsArray1D();

        for (int t = 0; t < batch; t++)
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double dot = 0, magnitude = 0;
            for (int q = 0; q < k; q++)
            {
                double product = SixteenBit.Value(a[t * m * k + i * k + q], true) * SixteenBit.Value(b[j * k + q], true);
                dot += product;
                magnitude += Math.Abs(product);
            }
            int at = t * m * n + i * n + j;
            double old = SixteenBit.Value(c[at], true), value = SixteenBit.Value(got[at], true);
            double want = ReferenceOps.Gelu(0.5 * dot + 0.25 * old + bias[j]);
            double tolerance = 1e-5 * (0.5 * magnitude + Math.Abs(0.25 * old) + Math.Abs(bias[j])) + Math.Pow(2, -8) * Math.Abs(want) + 1e-6;
            Assert.True(Math.Abs(value - want) <= tolerance, $"[{t}, {i}, {j}]: got {value}, want {want} (tolerance {tolerance:E2})");
        }
    }

    /// <summary>The GEMM's launch: a group of <see cref="HalfMatMulKernels.Threads"/> per 64 × 64 block of C, its shared memory where it runs.</summary>
    private static KernelConfig Launch(Accelerator accelerator, MatMulProblem p) => new(
        new Index3D((p.N + HalfMatMulKernels.BlockN - 1) / HalfMatMulKernels.BlockN, (p.M + HalfMatMulKernels.BlockM - 1) / HalfMatMulKernels.BlockM, p.Batch),
        new Index3D(HalfMatMulKernels.Threads, 1, 1),
        SharedMemoryConfig.RequestDynamic<byte>(HalfMatMulKernels.SharedBytes(onCuda: accelerator.AcceleratorType == AcceleratorType.Cuda)));

    private static Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<float>, MatMulProblem> Load<TFormat, TOperandA, TOperandB>(
        Accelerator accelerator)
        where TFormat : struct, IMmaFormat
        where TOperandA : struct, IHalfGemmOperandA
        where TOperandB : struct, IHalfGemmOperandB
    {
        var kernel = accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, F32GemmOutput, ArrayView<float>, MatMulProblem>(
            HalfMatMulKernels.TensorCore<TFormat, TOperandA, TOperandB, F32GemmOutput>);
        return (config, a, b, c, bias, p) => kernel(config, a, b, new F32GemmOutput { Values = c }, bias, p);
    }
}
