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
    /// two of those (each specialisation costs PoCL ~10–40 s to compile, so not all four). Tight strides (odd: staged element
    /// by element) in those six; rows padded to 16 bytes (staged in 16-byte asynchronous chunks, the last one of a row
    /// partly valid) once per storage pair (on PoCL the two that cover all four layouts), with K long enough to go round the
    /// stage ring.
    /// </summary>
    public static TheoryData<string, string, bool, bool, bool> Cases()
    {
        var data = new TheoryData<string, string, bool, bool, bool>();
        foreach (string name in TestDevices.Names.Where(n => n != "cpu"))
        {
            foreach (string format in new[] { "bf16", "f16" })
            foreach (bool linear in new[] { false, true })
                data.Add(name, format, linear, false, false);
            data.Add(name, "bf16", true, true, false);
            data.Add(name, "f16", false, true, false);
            // The two bf16 ones stage all four operand layouts in chunks; PoCL (slow to compile) runs only those.
            data.Add(name, "bf16", false, false, true);
            data.Add(name, "bf16", true, true, true);
            if (name != "opencl")
            {
                data.Add(name, "f16", true, false, true);
                data.Add(name, "f16", false, true, true);
            }
        }
        return data;
    }

    /// <summary>
    /// The staged tiles' swizzles, by their definition: every element has its own place, a 16-byte chunk stays whole, and the
    /// eight 16-byte rows one ldmatrix phase reads (eight consecutive staged rows, one chunk column, as the operands address
    /// them) land on eight different groups of four banks (4-byte banks, 32 of them), i.e. without conflicts; and the swizzle
    /// repeats every RowStep rows, which the staging's chunk loop relies on.
    /// </summary>
    [Fact]
    public void StagedTilesAreBijectiveAndLdmatrixReadsThemWithoutBankConflicts()
    {
        CheckTile(default(KInnerTile));
        CheckTile(default(KOuterTile));
        // The k-inner operands address a warp's four 16-row fragments as one place plus 16·k rows (immediates in their PTX).
        var inner = default(KInnerTile);
        for (int row = 0; row + KInnerTile.RowsWithOneSwizzle < inner.Rows; row++)
        for (int column = 0; column < inner.Width; column++)
            Assert.Equal(inner.Index(row, column) + KInnerTile.RowsWithOneSwizzle * inner.Width, inner.Index(row + KInnerTile.RowsWithOneSwizzle, column));
        Assert.Equal(1024, KInnerTile.RowsWithOneSwizzle * inner.Width * sizeof(ushort));

        static void CheckTile<TTile>(TTile tile) where TTile : struct, IStagedTile
        {
            var seen = new bool[tile.Rows * tile.Width];
            for (int row = 0; row < tile.Rows; row++)
            for (int column = 0; column < tile.Width; column++)
            {
                int at = tile.Index(row, column);
                Assert.InRange(at, 0, seen.Length - 1);
                Assert.False(seen[at], $"{typeof(TTile).Name}: ({row}, {column}) shares index {at}");
                seen[at] = true;
                Assert.Equal(tile.Index(row, column & ~7) + (column & 7), at);
                if (row + tile.RowStep < tile.Rows)
                    Assert.Equal(at + tile.RowStep * tile.Width, tile.Index(row + tile.RowStep, column));
            }
            for (int firstRow = 0; firstRow < tile.Rows; firstRow += 8)
            for (int chunk = 0; chunk < tile.Width / 8; chunk++)
            {
                var bankGroups = Enumerable.Range(firstRow, 8).Select(row => tile.Index(row, 8 * chunk) * sizeof(ushort) / 16 % 8).ToHashSet();
                Assert.True(bankGroups.Count == 8, $"{typeof(TTile).Name}: rows {firstRow}…{firstRow + 7}, chunk {chunk} fall on {bankGroups.Count} bank groups");
            }
        }
    }

    /// <summary>
    /// The CUDA path's register bookkeeping, read from the GEMM's PTX (what CI cannot run): by the PTX ISA's m16n8k16 layout
    /// (<see cref="MmaLayout"/>), the warp's accumulator for rows 16·i and columns 8·j must be multiplied from A's fragment of
    /// rows 16·i and B's of columns 8·j, and stored with its elements 0–1 at row g and 2–3 at row g + 8, 8·j columns on. Here:
    /// every mma names accumulator 8i + j (wc), A fragment i (wa, from the i-th ldmatrix, 16 staged rows = 1024 bytes on) and
    /// B fragment j (wb, the j-th pair of the 16-column ldmatrix loads), each (i, j) once per k16 step; and every store puts
    /// accumulator 8i + j's first pair at the top row and its second at the row 8 below, 32·j bytes along.
    /// </summary>
    [Fact]
    public void TensorCorePtxNamesEveryAccumulatorsFragmentsAsTheIsaLayoutSays()
    {
        var kernel = typeof(HalfMatMulKernels).GetMethod(nameof(HalfMatMulKernels.TensorCore))!
            .MakeGenericMethod(typeof(Bf16Mma), typeof(MMajorA), typeof(NMajorB), typeof(F32GemmOutput));
        string ptx = PtxGate.Compile(kernel, explicitlyGrouped: true, "sm_90");

        var products = System.Text.RegularExpressions.Regex.Matches(ptx,
            @"mma\.sync\.aligned\.m16n8k16\.row\.col\.f32\.bf16\.bf16\.f32 \{wc(\d+),wc(\d+),wc(\d+),wc(\d+)\}, \{wa(\d+),wa(\d+),wa(\d+),wa(\d+)\}, \{wb(\d+),wb(\d+)\}, \{wc(\d+),wc(\d+),wc(\d+),wc(\d+)\};")
            .Select(m => m.Groups.Values.Skip(1).Select(g => int.Parse(g.Value)).ToArray()).ToList();
        // Two k16 steps per 32-deep K step, each the warp's 32 products.
        Assert.Equal(64, products.Count);
        var seen = new HashSet<(int, int)>();
        foreach (int[] r in products)
        {
            int accumulator = r[0] / 4, i = r[4] / 4, j = r[8] / 2;
            Assert.Equal([4 * accumulator, 4 * accumulator + 1, 4 * accumulator + 2, 4 * accumulator + 3], r[..4]);
            Assert.Equal(r[..4], r[10..]);
            Assert.Equal([4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3], r[4..8]);
            Assert.Equal([2 * j, 2 * j + 1], r[8..10]);
            Assert.Equal(8 * i + j, accumulator);
            seen.Add((i, j));
        }
        Assert.Equal(32, seen.Count);

        // ldmatrix i: A rows 16·i on (1024 bytes), or B columns 16·i on, whose two 8-column halves are B fragments 2i and 2i + 1.
        foreach (string operand in new[] { "wa", "wb" })
        for (int i = 0; i < 4; i++)
        {
            string offset = i == 0 ? "" : $"+{1024 * i}";
            Assert.Contains($"ldmatrix.sync.aligned.m8n8.x4.shared.b16 {{{operand}{4 * i},{operand}{4 * i + 1},{operand}{4 * i + 2},{operand}{4 * i + 3}}}, [at{offset}];", ptx);
        }

        var stores = System.Text.RegularExpressions.Regex.Matches(ptx, @"st\.shared\.v2\.f32 \[(at|below)(?:\+(\d+))?\], \{wc(\d+),wc(\d+)\};")
            .Select(m => (Row: m.Groups[1].Value, Offset: m.Groups[2].Success ? int.Parse(m.Groups[2].Value) : 0, First: int.Parse(m.Groups[3].Value),
                Second: int.Parse(m.Groups[4].Value))).ToList();
        Assert.Equal(64, stores.Count);
        foreach (var (row, offset, first, second) in stores)
        {
            int accumulator = first / 4, j = accumulator % 8;
            Assert.Equal(first + 1, second);
            // Elements 0–1 (row g) go to the top row, 2–3 (row g + 8) to the one below; 8 floats = 32 bytes per 8-column tile.
            Assert.Equal(row == "at" ? 0 : 2, first % 4);
            Assert.Equal(32 * j, offset);
        }
        Assert.Equal(64, stores.Select(s => s.First).Distinct().Count());
    }

    public static TheoryData<string> IlgpuDevices() => [.. TestDevices.Names.Where(n => n != "cpu")];

    [Theory]
    [MemberData(nameof(Cases))]
    public void TensorCoreGemmMatchesAPlainReference(string deviceName, string format, bool linear, bool transposeA, bool padded)
    {
        // Padded: M and N past one 128-row block, so that some threads' four chunks of a k-inner tile are all inside the data
        // (whole copies) and others are not (zero-filled ones).
        const int batch = 2;
        int m = padded ? 131 : 67, n = padded ? 109 : 45, k = padded ? 135 : 71;
        bool bf16 = format == "bf16";
        // Stored row lengths: A is [M, K] or [K, M]; B is [K, N] or, for Linear, [N, K]. Padded rows hold NaN past the data,
        // so that a read beyond a row's valid elements shows in the result.
        int rowsA = transposeA ? k : m, widthA = transposeA ? m : k, rowsB = linear ? n : k, widthB = linear ? k : n;
        int lda = padded ? (widthA + 7) / 8 * 8 : widthA, ldb = padded ? (widthB + 7) / 8 * 8 : widthB;
        ushort[] a = Stored(batch * rowsA, widthA, lda, 51, bf16), b = Stored(rowsB, widthB, ldb, 52, bf16);
        float[] c = RandomData.Uniform(batch * m * n, 53, 4f), bias = RandomData.Uniform(n, 54);
        var p = new MatMulProblem
        {
            Batch = batch, M = m, N = n, K = k, Lda = lda, Ldb = ldb, Ldc = n,
            BatchStrideA = (long)rowsA * lda, BatchStrideB = 0, BatchStrideC = (long)m * n,
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
                // op(A)[i, q] and op(B)[q, j] from the stored rows.
                ushort aBits = transposeA ? a[(t * k + q) * lda + i] : a[(t * m + i) * lda + q];
                double product = SixteenBit.Value(aBits, bf16) * SixteenBit.Value(linear ? b[j * ldb + q] : b[q * ldb + j], bf16);
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

    /// <summary><paramref name="rows"/> stored rows of <paramref name="width"/> random 16-bit values, <paramref name="stride"/> apart, NaN between them.</summary>
    private static ushort[] Stored(int rows, int width, int stride, int seed, bool bf16)
    {
        ushort[] values = SixteenBit.Bits(RandomData.Uniform(rows * width, seed, 2f), bf16);
        ushort[] stored = new ushort[rows * stride];
        Array.Fill(stored, bf16 ? (ushort)0x7FC0 : (ushort)0x7E00);
        for (int r = 0; r < rows; r++)
            Array.Copy(values, r * width, stored, r * stride, width);
        return stored;
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
        var kernel = accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, SixteenBitGemmOutput<F32ToBF16, BF16ToF32>, ArrayView<float>, MatMulProblem, long, long>(
            HalfMatMulKernels.TensorCore<Bf16Mma, MMajorA, NMajorB, SixteenBitGemmOutput<F32ToBF16, BF16ToF32>>);
        using var da = accelerator.Allocate1D(a);
        using var db = accelerator.Allocate1D(b);
        using var dc = accelerator.Allocate1D(c);
        using var dbias = accelerator.Allocate1D(bias);
        var config = Launch(accelerator, p);
        kernel(config, da.View, db.View, new SixteenBitGemmOutput<F32ToBF16, BF16ToF32> { Values = dc.View }, dbias.View, p,
            Address(accelerator, da.View), Address(accelerator, db.View));
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

    /// <summary>The GEMM's launch: a group of <see cref="HalfMatMulKernels.Threads"/> per BlockM × BlockN block of C, its shared memory where it runs.</summary>
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
        var kernel = accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, F32GemmOutput, ArrayView<float>, MatMulProblem, long, long>(
            HalfMatMulKernels.TensorCore<TFormat, TOperandA, TOperandB, F32GemmOutput>);
        return (config, a, b, c, bias, p) => kernel(config, a, b, new F32GemmOutput { Values = c }, bias, p, Address(accelerator, a), Address(accelerator, b));
    }

    /// <summary>The operand's device address, which the kernel's cp.async needs on CUDA; 0 elsewhere (only its alignment is read there).</summary>
    private static long Address(Accelerator accelerator, ArrayView<ushort> view) =>
        accelerator.AcceleratorType == AcceleratorType.Cuda ? view.LoadEffectiveAddressAsPtr().ToInt64() : 0;
}
