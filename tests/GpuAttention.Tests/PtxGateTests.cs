using System.Reflection;
using System.Text;
using GpuAttention.Backends.Ilgpu;
using GpuAttention.Kernels;

namespace GpuAttention.Tests;

/// <summary>
/// The PTX gate: every ILGPU kernel compiled for CUDA as production compiles it, with no GPU, and assembled by ptxas for
/// sm_80 and sm_90. Each must assemble, spill nothing, keep a zero stack frame where its design holds its accumulators
/// in registers, stay within the register budget its occupancy target sets (written beside it below), and fit CUDA's
/// 48 KB of static + dynamic shared memory at its largest GPU launch. Without ptxas (tools/cuda/provide-ptxas.sh) the gate
/// still compiles every kernel to PTX; CI sets GPUATTENTION_REQUIRE_PTXAS=1 so that it always assembles.
/// </summary>
public sealed class PtxGateTests(ITestOutputHelper output)
{
    /// <summary>
    /// One kernel as the gate checks it: its method, how it is launched, its threads per group and dynamic shared memory
    /// at the largest GPU launch (<see cref="LaunchProfile.Gpu"/>; auto-grouped kernels are counted at 256 threads), and its budget.
    /// </summary>
    public sealed record GatedKernel(string Name, MethodInfo Method, bool ExplicitlyGrouped, int Threads, int DynamicSharedBytes,
        int RegisterBudget, bool RegistersOnly, string Why, string[]? RequiredInstructions = null);

    private const string Streaming = "memory-bound, one element per thread: ≤ 32 registers keeps all 2048 threads of an SM resident";

    public static IReadOnlyList<GatedKernel> Kernels { get; } = BuildKernels();

    /// <summary>Every pair assembled once, in parallel, before the first test reads one (<see cref="PtxGate.AssembleAll"/>).</summary>
    private static readonly Lazy<bool> AllAssembled = new(() =>
    {
        PtxGate.AssembleAll(Kernels.Select(k => (k.Name, k.Method, k.ExplicitlyGrouped)));
        return true;
    });

    private static List<GatedKernel> BuildKernels()
    {
        var gpu = LaunchProfile.Gpu;
        int attentionShared = new[] { 32, 64, 128, 256 }.Max(d => AttentionTiling.Choose(d, gpu)!.SharedFloats) * sizeof(float);
        MethodInfo M(Type type, string name) => type.GetMethod(name)!;
        MethodInfo Convert<TFrom, TTo, TConversion>() where TFrom : unmanaged where TTo : unmanaged
            where TConversion : struct, IElementConversion<TFrom, TTo> =>
            ((Action<ILGPU.Index1D, ILGPU.ArrayView<TFrom>, ILGPU.ArrayView<TTo>>)ElementwiseKernels.Convert<TFrom, TTo, TConversion>).Method;
        var kernels = new List<GatedKernel>
        {
            new("MatMulKernels.Naive", M(typeof(MatMulKernels), nameof(MatMulKernels.Naive)), false, 256, 0, 32, true,
                "the decode-sized baseline, one dot product per thread: " + Streaming),
            new("SoftmaxKernels.MaskedSoftmax", M(typeof(SoftmaxKernels), nameof(SoftmaxKernels.MaskedSoftmax)), true,
                gpu.RowGroupSize, gpu.SharedMemoryBytes, 32, true,
                "memory-bound, a row per group: ≤ 32 registers so that registers never limit occupancy (shared memory does, with long rows)"),
            new("LayerNormKernels.L2Normalize", M(typeof(LayerNormKernels), nameof(LayerNormKernels.L2Normalize)), true,
                gpu.RowGroupSize, gpu.RowGroupSize * sizeof(float), 32, true,
                "memory-bound, a row per group and one reduction: ≤ 32 registers so that registers never limit occupancy"),
            new("LayerNormKernels.EmbeddingLayerNorm", M(typeof(LayerNormKernels), nameof(LayerNormKernels.EmbeddingLayerNorm)), true,
                gpu.RowGroupSize, gpu.SharedMemoryBytes, 40, true,
                "memory-bound, a row per group (three table rows summed into shared memory, then LayerNorm's reductions): the budget of LayerNorm"),
            new("LayerNormKernels.LayerNorm", M(typeof(LayerNormKernels), nameof(LayerNormKernels.LayerNorm)), true,
                gpu.RowGroupSize, gpu.SharedMemoryBytes, 40, true,
                "memory-bound, a row per group: ≤ 40 registers leaves room for 12 groups of 128 threads per SM, more than its shared memory allows with wide rows (4)"),
        };
        foreach (var tile in MatMulKernels.CompiledTiles)
            kernels.Add(new($"MatMulKernels.Tiled<{tile.GetType().Name}>", MatMulKernels.TiledFor(tile).Method, true,
                tile.GroupX * tile.GroupY, MatMulKernels.TiledSharedFloats(tile.Depth, tile.GroupX, tile.GroupY) * sizeof(float), 64, true,
                "a 4×4 register block per thread: ≤ 64 registers keeps 4 groups of 256 threads (50 %) per SM, enough with 16 FMAs per 8 shared loads"));
        var flashVariants = new[]
        {
            (8, typeof(Columns8), typeof(DotProductScore), typeof(SoftmaxWeights)),
            (16, typeof(Pair<Columns8>), typeof(DotProductScore), typeof(SoftmaxWeights)),
            (32, typeof(Pair<Pair<Columns8>>), typeof(DotProductScore), typeof(SoftmaxWeights)),
            (32, typeof(Pair<Pair<Columns8>>), typeof(DotProductScore), typeof(ReluWeights)),
            (32, typeof(Pair<Pair<Columns8>>), typeof(AdditiveScore), typeof(SoftmaxWeights)),
            (32, typeof(Pair<Pair<Columns8>>), typeof(AdditiveScore), typeof(ReluWeights)),
        };
        foreach (var (columns, accumulator, score, weights) in flashVariants)
            kernels.Add(new($"AttentionKernels.FlashForward<{columns} columns, {score.Name}, {weights.Name}>",
                typeof(AttentionKernels).GetMethod(nameof(AttentionKernels.FlashForward))!.MakeGenericMethod(accumulator, score, weights), true,
                gpu.AttentionGroupSize, attentionShared, 96, true,
                $"each thread accumulates up to {columns} columns of a query row in registers: ≤ 96 registers keeps 5 groups of 128 threads (31 %) per SM, about what its shared memory allows"));
        kernels.Add(new("AttentionKernels.AdditiveScores", M(typeof(AttentionKernels), nameof(AttentionKernels.AdditiveScores)), false, 256, 0, 32, true,
            "the unfused additive baseline, one score (a tanh per projected column) per thread: " + Streaming));
        foreach (var (format, type, instruction) in new[] { ("Bf16Mma", typeof(Bf16Mma), "HMMA.16816.F32.BF16"), ("F16Mma", typeof(F16Mma), "HMMA.16816.F32") })
            kernels.Add(new($"MmaKernels.TileProducts<{format}>",
                typeof(MmaKernels).GetMethod(nameof(MmaKernels.TileProducts))!.MakeGenericMethod(type), true, 128, 0, 40, true,
                "the primitive's check kernel, one m16n8k16 product per warp with its fragments in registers (no shared memory on CUDA): " +
                "its SASS must hold the tensor-core instruction and no local memory; ≤ 40 registers (32 now) leaves room without mattering to occupancy",
                [instruction]));
        foreach (var (orientation, type, instruction) in new[] { ("AsStored", typeof(AsStored), "LDSM.16.M88.4"), ("Transposed", typeof(Transposed), "LDSM.16.MT88.4") })
            kernels.Add(new($"MmaKernels.LoadMatrices<{orientation}>",
                typeof(MmaKernels).GetMethod(nameof(MmaKernels.LoadMatrices))!.MakeGenericMethod(type), true, 128,
                4 * (16 * MmaKernels.StagedRowStride * sizeof(ushort) + WarpMatrix.ScratchIntsPerWarp * sizeof(int)), 40, true,
                "the ldmatrix primitive's check kernel: its SASS must hold the instruction; ≤ 40 registers leaves room without mattering to occupancy",
                [instruction]));
        kernels.Add(new("MmaKernels.CopyRowsAsync", M(typeof(MmaKernels), nameof(MmaKernels.CopyRowsAsync)), true, 128, 16 * 1024, 32, true,
            "the cp.async primitive's check kernel, a copy loop: its SASS must hold the asynchronous copy (LDGSTS); ≤ 32 registers: " + Streaming,
            ["LDGSTS"]));
        foreach (var (packing, type) in new[] { ("Bf16Pair", typeof(Bf16Pair)), ("F16Pair", typeof(F16Pair)) })
            kernels.Add(new($"MmaKernels.PackPairs<{packing}>",
                typeof(MmaKernels).GetMethod(nameof(MmaKernels.PackPairs))!.MakeGenericMethod(type), false, 256, 0, 32, true,
                "the pair-packing primitive's check kernel, one pair per thread: " + Streaming + "; its SASS must hold the packing conversion",
                ["F2FP"]));
        foreach (var (format, formatType, mma) in new[] { ("Bf16Mma", typeof(Bf16Mma), "HMMA.16816.F32.BF16"), ("F16Mma", typeof(F16Mma), "HMMA.16816.F32") })
        foreach (var (operandA, operandAType, operand, operandType, output, outputType, loadB) in new[]
        {
            ("MMajorA", typeof(MMajorA), "KMajorB", typeof(KMajorB), "F32", typeof(F32GemmOutput), "LDSM.16.MT88.4"),
            ("MMajorA", typeof(MMajorA), "NMajorB", typeof(NMajorB), "F32", typeof(F32GemmOutput), "LDSM.16.M88.4"),
            ("KMajorA", typeof(KMajorA), "NMajorB", typeof(NMajorB), "F32", typeof(F32GemmOutput), "LDSM.16.MT88.4"),
            ("MMajorA", typeof(MMajorA), "NMajorB", typeof(NMajorB), "16-bit",
                format == "Bf16Mma" ? typeof(SixteenBitGemmOutput<F32ToBF16, BF16ToF32>) : typeof(SixteenBitGemmOutput<F32ToF16, F16ToF32>), "LDSM.16.M88.4"),
        })
            kernels.Add(new($"HalfMatMulKernels.TensorCore<{format}, {operandA}, {operand}, {output} C>",
                typeof(HalfMatMulKernels).GetMethod(nameof(HalfMatMulKernels.TensorCore))!.MakeGenericMethod(formatType, operandAType, operandType, outputType), true,
                HalfMatMulKernels.Threads, HalfMatMulKernels.SharedBytes(onCuda: true), 255, true,
                "a warp's 64×64 output tile is 128 fp32 accumulators plus 32 fragment registers; any count up to the hardware's 255 keeps two " +
                "groups of 4 warps per SM (2 × 128 threads × 256 = 65 536 registers), so one group's multiply covers the other's waits; the " +
                "SASS must hold the mma, both ldmatrix loads and the cp.async copy (LDGSTS)",
                [mma, "LDSM.16.M88.4", loadB, "LDGSTS"]));
        var tensorCoreAttention = new[]
        {
            ("Bf16Mma", typeof(Bf16Mma), typeof(Bf16Pair), "HMMA.16816.F32.BF16", 64, typeof(HeadPair<HeadPair<HeadSlice16>>), typeof(F32Output)),
            ("Bf16Mma", typeof(Bf16Mma), typeof(Bf16Pair), "HMMA.16816.F32.BF16", 128, typeof(HeadPair<HeadPair<HeadPair<HeadSlice16>>>), typeof(SixteenBitOutput<Bf16Pair>)),
            ("F16Mma", typeof(F16Mma), typeof(F16Pair), "HMMA.16816.F32", 128, typeof(HeadPair<HeadPair<HeadPair<HeadSlice16>>>), typeof(F32Output)),
        };
        foreach (var (format, formatType, packing, mma, d, head, outputType) in tensorCoreAttention)
            kernels.Add(new($"TensorCoreAttentionKernels.FlashForward<{format}, d{d}, {outputType.Name.Split('`')[0]}>",
                typeof(TensorCoreAttentionKernels).GetMethod(nameof(TensorCoreAttentionKernels.FlashForward))!.MakeGenericMethod(formatType, packing, head, outputType),
                true, gpu.TensorCoreWarps * MmaLayout.WarpSize, TensorCoreAttentionKernels.SharedBytes(d, gpu.TensorCoreWarps, onCuda: true), 255, true,
                "a warp's 16 query rows hold Q's fragments, the d-wide output and 64 scores in registers (d = 128: 32 + 64 + 32 and P's " +
                "fragments), as FlashAttention-2 does: up to the 255 an sm_80/sm_90 thread may have, with no spills; the SASS must hold the " +
                "mma, both ldmatrix loads, ex2 and the quad shuffles",
                [mma, "LDSM.16.M88.4", "LDSM.16.MT88.4", "MUFU.EX2", "SHFL.BFLY"]));
        foreach (string name in new[]
        {
            nameof(ElementwiseKernels.Add), nameof(ElementwiseKernels.ScaleActivate), nameof(ElementwiseKernels.EmbeddingGather),
            nameof(ElementwiseKernels.SplitHeads), nameof(ElementwiseKernels.MergeHeads), nameof(ElementwiseKernels.GatherRows),
            nameof(ElementwiseKernels.GatherSplitHeads), nameof(ElementwiseKernels.MergeHeadsGather),
        })
            kernels.Add(new($"ElementwiseKernels.{name}", M(typeof(ElementwiseKernels), name), false, 256, 0, 32, true, Streaming));
        kernels.Add(new("ElementwiseKernels.AddSinusoidalPositions", M(typeof(ElementwiseKernels), nameof(ElementwiseKernels.AddSinusoidalPositions)),
            false, 256, 0, 48, false,
            "double-precision sin and cos (float loses ~1e-4 at positions in the thousands): their argument reduction takes registers and a " +
            "small local-memory frame; it has no accumulators, and ≤ 48 registers still keeps 5 groups of 256 threads (62 %) per SM"));
        foreach (var (name, method) in new[]
        {
            ("F32ToF16", Convert<float, ushort, F32ToF16>()), ("F16ToF32", Convert<ushort, float, F16ToF32>()),
            ("F32ToBF16", Convert<float, ushort, F32ToBF16>()), ("BF16ToF32", Convert<ushort, float, BF16ToF32>()),
            ("F16ToBF16", Convert<ushort, ushort, F16ToBF16>()), ("BF16ToF16", Convert<ushort, ushort, BF16ToF16>()),
        })
            kernels.Add(new($"ElementwiseKernels.Convert<{name}>", method, false, 256, 0, 32, true, Streaming));
        return kernels;
    }

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var kernel in Kernels)
        foreach (string architecture in PtxGate.Architectures)
            data.Add(kernel.Name, architecture);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void KernelAssemblesWithinItsBudget(string name, string architecture)
    {
        var kernel = Kernels.Single(k => k.Name == name);
        string ptx = PtxGate.Compile(kernel.Method, kernel.ExplicitlyGrouped, architecture);
        Assert.Contains(".entry", ptx);
        if (PtxGate.Ptxas is null)
        {
            Assert.False(PtxGate.Required, "GPUATTENTION_REQUIRE_PTXAS=1, but GPUATTENTION_PTXAS names no ptxas: run tools/cuda/provide-ptxas.sh.");
            return;
        }
        _ = AllAssembled.Value;
        var assembled = PtxGate.Gate(name, kernel.Method, kernel.ExplicitlyGrouped, architecture);
        output.WriteLine($"{name} {architecture}: {assembled.Registers} registers, {assembled.StackBytes} B stack, " +
            $"{assembled.SpillStores}/{assembled.SpillLoads} B spilled, {assembled.StaticSharedBytes} B static shared");
        Assert.True(assembled.SpillStores == 0 && assembled.SpillLoads == 0, $"{name} spills on {architecture}");
        if (kernel.RegistersOnly)
            Assert.True(assembled.StackBytes == 0, $"{name} has a {assembled.StackBytes}-byte stack frame on {architecture}: its accumulators are in local memory");
        Assert.True(assembled.Registers <= kernel.RegisterBudget,
            $"{name} uses {assembled.Registers} registers on {architecture}, over its budget of {kernel.RegisterBudget}: {kernel.Why}");
        foreach (string instruction in kernel.RequiredInstructions ?? [])
            Assert.True(assembled.Sass.Contains(instruction, StringComparison.Ordinal), $"{name} on {architecture}: no {instruction} in its SASS");
        int shared = assembled.StaticSharedBytes + kernel.DynamicSharedBytes;
        Assert.True(shared <= LaunchProfile.CudaSharedMemoryLimit,
            $"{name} needs {shared} bytes of shared memory on {architecture}, over CUDA's {LaunchProfile.CudaSharedMemoryLimit} without an opt-in");
    }

    /// <summary>Every kernel method of the kernels assembly is gated: a new kernel cannot skip the gate.</summary>
    [Fact]
    public void EveryKernelIsGated()
    {
        var kernelMethods = typeof(MatMulKernels).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(MatMulKernels).Namespace && t.Name.EndsWith("Kernels", StringComparison.Ordinal))
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Static).Where(m => m.ReturnType == typeof(void)))
            .Select(m => $"{m.DeclaringType!.Name}.{m.Name}")
            .ToHashSet();
        var gated = Kernels.Select(k => k.Name.Split('<')[0]).ToHashSet();
        Assert.Empty(kernelMethods.Except(gated));
    }

    /// <summary>
    /// The gate's table (kernel, target, registers, stack, shared memory, theoretical occupancy on sm_90), printed, and written
    /// to the file GPUATTENTION_GATE_REPORT names (docs/PTX-GATE.md is made that way).
    /// </summary>
    [Fact]
    public void ReportTable()
    {
        if (PtxGate.Ptxas is null)
        {
            Assert.False(PtxGate.Required, "GPUATTENTION_REQUIRE_PTXAS=1, but GPUATTENTION_PTXAS names no ptxas: run tools/cuda/provide-ptxas.sh.");
            return;
        }
        _ = AllAssembled.Value;
        var table = new StringBuilder();
        table.AppendLine("| kernel | target | registers (budget) | stack | spills | shared: static + dynamic | threads/group | occupancy sm_90 |");
        table.AppendLine("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (var kernel in Kernels)
        foreach (string architecture in PtxGate.Architectures)
        {
            var a = PtxGate.Gate(kernel.Name, kernel.Method, kernel.ExplicitlyGrouped, architecture);
            string occupancy = architecture == "sm_90"
                ? $"{PtxGate.Occupancy(a.Registers, kernel.Threads, a.StaticSharedBytes + kernel.DynamicSharedBytes):P0}"
                : "";
            table.AppendLine($"| `{kernel.Name}` | {architecture} | {a.Registers} ({kernel.RegisterBudget}) | {a.StackBytes} B | " +
                $"{a.SpillStores + a.SpillLoads} B | {a.StaticSharedBytes} + {kernel.DynamicSharedBytes} B | {kernel.Threads} | {occupancy} |");
        }
        output.WriteLine(table.ToString());
        if (Environment.GetEnvironmentVariable("GPUATTENTION_GATE_REPORT") is { Length: > 0 } path)
            File.WriteAllText(path, table.ToString());
    }
}
