using GpuAttention.Backends.Ilgpu;
using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Tests;

/// <summary>
/// 16-bit attention: the tensor-core kernel (mma on CUDA, the primitives' portable bodies on the CPU accelerator and
/// OpenCL, under their launch profiles and the GPU's) and the widening path everywhere else, each against a
/// double-precision reference computed from the exact values of the same 16-bit inputs.
/// </summary>
/// <remarks>
/// Tolerance: the kernel rounds each softmax weight p ∈ [0, 1] to 16 bits before P·V (relative error ≤ u, u = 2⁻⁹ for
/// bf16, 2⁻¹² for f16), so the output moves by at most u·Σpⱼ|vⱼ|/Σpⱼ ≤ u·max|v|; everything else is fp32. The tests allow
/// 2u·max|v|, and 2u relative more for a 16-bit output (its own rounding). The log-sum-exp is fp32 throughout: 1e-4.
/// </remarks>
[Collection(AcceleratorCollection.Name)]
public sealed class TensorCoreAttentionTests
{
    /// <summary>
    /// Every mask in both formats, except on OpenCL: its CPU driver (PoCL) takes 10–40 s to compile each specialisation of the
    /// kernel through the portable bodies, so CI's PoCL runs one, bf16 with an F32 output, on every mask.
    /// </summary>
    public static TheoryData<string, string, string> MaskCasesOnTensorCores()
    {
        var data = new TheoryData<string, string, string>();
        foreach (string device in TestDevices.TensorCoreNames.Where(n => n != TestDevices.GpuProfileOnCpu))
        foreach (string format in device == TestDevices.OpenCLTensorCoreName ? ["bf16"] : new[] { "bf16", "f16" })
        foreach (string mask in MaskCases.Names)
            data.Add(device, format, mask);
        return data;
    }

    [Theory]
    [MemberData(nameof(MaskCasesOnTensorCores))]
    public void EveryMaskMatchesReference(string deviceName, string format, string maskName) =>
        RunAndCompare(TestDevices.Get(deviceName), format, maskName, batch: 2, heads: 2, keyHeads: 2, lq: 37, capacity: 45,
            keyLength: 45, d: 64, sixteenBitOutput: false, seed: 11);

    /// <summary>
    /// Both formats and head dimensions on CUDA; elsewhere the portable bodies cost time, so a subset that still reaches
    /// every specialisation's code: the CPU accelerator runs bf16 and f16 at 64 and bf16 at 128 (the GPU-profile test adds f16
    /// at 128); not OpenCL (see <see cref="MaskCasesOnTensorCores"/>; d = 128 takes PoCL minutes to compile).
    /// </summary>
    public static TheoryData<string, string, int> HeadDimsOnTensorCores()
    {
        var data = new TheoryData<string, string, int>();
        foreach (string device in TestDevices.TensorCoreNames.Where(n => n != TestDevices.GpuProfileOnCpu))
        foreach (string format in new[] { "bf16", "f16" })
        foreach (int d in new[] { 64, 128 })
        {
            bool wanted = device switch
            {
                TestDevices.CpuAcceleratorTensorCoreName => d == 64 || format == "bf16",
                TestDevices.OpenCLTensorCoreName => false,
                _ => true,
            };
            if (wanted)
                data.Add(device, format, d);
        }
        return data;
    }

    public static TheoryData<string, string> FormatsOnTensorCores()
    {
        var data = new TheoryData<string, string>();
        foreach (string device in TestDevices.TensorCoreNames.Where(n => n != TestDevices.GpuProfileOnCpu))
        foreach (string format in new[] { "bf16", "f16" })
            data.Add(device, format);
        return data;
    }

    /// <summary>
    /// Grouped queries (two query heads per key head), a cache read to 131 of 150 rows (three key tiles, the last partial),
    /// several query blocks, causal with Lq &lt; Lk (tiles skipped, tiles whole, tiles cut by the diagonal), and the output
    /// in the inputs' format.
    /// </summary>
    [Theory]
    [MemberData(nameof(HeadDimsOnTensorCores))]
    public void GroupedQueriesFromACacheIntoSixteenBits(string deviceName, string format, int d) =>
        RunAndCompare(TestDevices.Get(deviceName), format, "causal", batch: 1, heads: 2, keyHeads: 1, lq: 70, capacity: 150,
            keyLength: 131, d, sixteenBitOutput: true, seed: 12);

    [Fact]
    public void GpuLaunchProfileMatchesReference()
    {
        var device = TestDevices.Get(TestDevices.GpuProfileOnCpu);
        RunAndCompare(device, "bf16", "causal+padding", batch: 2, heads: 1, keyHeads: 1, lq: 40, capacity: 75, keyLength: 75, d: 64,
            sixteenBitOutput: false, seed: 13);
        RunAndCompare(device, "f16", "window+additive", batch: 1, heads: 2, keyHeads: 1, lq: 20, capacity: 70, keyLength: 67, d: 128,
            sixteenBitOutput: true, seed: 14);
    }

    /// <summary>The devices whose launch profile leaves 16-bit attention to the fp32 kernel: the same contract, widened.</summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void WideningPathMatchesReference(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        RunAndCompare(device, "bf16", "causal+padding", batch: 2, heads: 2, keyHeads: 1, lq: 19, capacity: 30, keyLength: 23, d: 64,
            sixteenBitOutput: true, seed: 15);
        RunAndCompare(device, "f16", "additive-2d", batch: 2, heads: 1, keyHeads: 1, lq: 9, capacity: 13, keyLength: 13, d: 24,
            sixteenBitOutput: false, seed: 16);
    }

    /// <summary>A head dimension the tensor-core kernel is not compiled for, and the ReLU normaliser, go to the fp32 kernel there too (README, "Half precision").</summary>
    [Theory]
    [MemberData(nameof(FormatsOnTensorCores))]
    public void OtherHeadDimsAndTheReluNormalizerWidenOnTensorCoreDevices(string deviceName, string format)
    {
        var device = TestDevices.Get(deviceName);
        var backend = (IlgpuBackend)device.Backend;
        var problem = new AttentionProblem { Batch = 1, Heads = 1, KeyHeads = 1, Lq = 1, Lk = 1, KeyCapacity = 1, HeadDim = 64, ValueDim = 64 };
        Assert.True(backend.RunsOnTensorCores(problem));
        Assert.False(backend.RunsOnTensorCores(problem with { HeadDim = 40, ValueDim = 40 }));
        Assert.False(backend.RunsOnTensorCores(problem with { Normalizer = (int)ScoreNormalizer.Relu }));
        RunAndCompare(device, format, "causal", batch: 1, heads: 2, keyHeads: 2, lq: 11, capacity: 17, keyLength: 17, d: 40,
            sixteenBitOutput: false, seed: 17);
        RunAndCompare(device, format, "padding", batch: 2, heads: 1, keyHeads: 1, lq: 7, capacity: 21, keyLength: 21, d: 64,
            sixteenBitOutput: false, seed: 18, relu: true);
    }

    /// <summary>Grouped-query and multi-query attention in fp32, on every device.</summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void GroupedQueriesInFp32MatchReference(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        foreach (int keyHeads in new[] { 2, 1 })
        {
            const int batch = 2, heads = 4, lq = 13, lk = 21, d = 16;
            float[] qv = RandomData.Uniform(batch * heads * lq * d, 21, 2f), kv = RandomData.Uniform(batch * keyHeads * lk * d, 22, 2f);
            float[] vv = RandomData.Uniform(batch * keyHeads * lk * d, 23);
            using var q = device.Upload(qv, batch, heads, lq, d);
            using var k = device.Upload(kv, batch, keyHeads, lk, d);
            using var v = device.Upload(vv, batch, keyHeads, lk, d);
            using var o = device.Allocate(batch, heads, lq, d);
            Attention.Fused(q, k, v, o, AttentionMask.Causal);
            var (want, _) = ReferenceOps.Attention(qv, ExpandHeads(kv, batch, keyHeads, heads, lk, lk, d),
                ExpandHeads(vv, batch, keyHeads, heads, lk, lk, d), batch, heads, lq, lk, d, new ReferenceMask { Right = 0 }, 1.0 / Math.Sqrt(d));
            Numerics.AssertClose(want, o.ToArray(), what: $"{keyHeads} key heads");
        }
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void BadSixteenBitInputIsRejectedNamingTheArgument(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        using var q = device.Allocate(DType.BF16, 1, 3, 4, 64);
        using var k = device.Allocate(DType.BF16, 1, 3, 5, 64);
        using var v = device.Allocate(DType.BF16, 1, 3, 5, 64);
        using var kF16 = device.Allocate(DType.F16, 1, 3, 5, 64);
        using var kTwoHeads = device.Allocate(DType.BF16, 1, 2, 5, 64);
        using var vTwoHeads = device.Allocate(DType.BF16, 1, 2, 5, 64);
        using var outputF16 = device.Allocate(DType.F16, 1, 3, 4, 64);
        using var lseBf16 = device.Allocate(DType.BF16, 1, 3, 4);
        using var output = device.Upload(Enumerable.Repeat(7f, 3 * 4 * 64).ToArray(), 1, 3, 4, 64);

        Assert.Equal("k", Assert.Throws<ArgumentException>(() => Attention.Fused(q, kF16, v, output)).ParamName);
        Assert.Equal("output", Assert.Throws<ArgumentException>(() => Attention.Fused(q, k, v, outputF16)).ParamName);
        Assert.Equal("logSumExp", Assert.Throws<ArgumentException>(() => Attention.Fused(q, k, v, output, logSumExp: lseBf16)).ParamName);
        var heads = Assert.Throws<ArgumentException>(() => Attention.Fused(q, kTwoHeads, vTwoHeads, output));
        Assert.Equal("k", heads.ParamName);
        Assert.Contains("a divisor of the heads of 'q'", heads.Message);
        Assert.Contains("Attention.Fused takes BF16", Assert.Throws<NotSupportedException>(() => Attention.Unfused(q, k, v, output)).Message);
        Assert.All(output.ToArray(), x => Assert.Equal(7f, x));
    }

    internal static void RunAndCompare(ComputeDevice device, string format, string maskName, int batch, int heads, int keyHeads,
        int lq, int capacity, int keyLength, int d, bool sixteenBitOutput, int seed, bool relu = false)
    {
        bool bf16 = format == "bf16";
        var dtype = bf16 ? DType.BF16 : DType.F16;
        ushort[] qBits = SixteenBit.Bits(RandomData.Uniform(batch * heads * lq * d, seed, 2f), bf16);
        ushort[] kBits = SixteenBit.Bits(RandomData.Uniform(batch * keyHeads * capacity * d, seed + 1, 2f), bf16);
        ushort[] vBits = SixteenBit.Bits(RandomData.Uniform(batch * keyHeads * capacity * d, seed + 2), bf16);
        var (mask, reference, owned) = MaskCases.Make(maskName, device, batch, heads, lq, keyLength);
        using var _ = owned;
        using var q = Upload(device, qBits, bf16, batch, heads, lq, d);
        using var k = Upload(device, kBits, bf16, batch, keyHeads, capacity, d);
        using var v = Upload(device, vBits, bf16, batch, keyHeads, capacity, d);
        using var o = device.Allocate(sixteenBitOutput ? dtype : DType.F32, batch, heads, lq, d);
        using var lse = device.Allocate(batch, heads, lq);
        var normalizer = relu ? ScoreNormalizer.Relu : ScoreNormalizer.Softmax;
        Attention.Fused(q, k, v, o, mask, logSumExp: relu ? null : lse, keyLength: keyLength, normalizer: normalizer);

        float[] Widen(ushort[] bits) => bits.Select(b => (float)SixteenBit.Value(b, bf16)).ToArray();
        float[] values = Widen(vBits);
        var (want, wantLse) = ReferenceOps.Attention(Widen(qBits),
            ExpandHeads(Widen(kBits), batch, keyHeads, heads, capacity, keyLength, d), ExpandHeads(values, batch, keyHeads, heads, capacity, keyLength, d),
            batch, heads, lq, keyLength, d, reference, 1.0 / Math.Sqrt(d), relu);
        double unit = bf16 ? 1.0 / 512 : 1.0 / 4096;
        double largestValue = values.Max(Math.Abs);
        string what = $"{device} {format} {maskName} d={d}";
        Numerics.AssertClose(want, o.ToArray(), atol: 2 * unit * largestValue + 1e-6, rtol: sixteenBitOutput ? 2 * unit : 1e-5, what: what + " output");
        if (!relu)
            Numerics.AssertClose(wantLse, lse.ToArray(), atol: 1e-4, rtol: 1e-5, what: what + " log-sum-exp");
    }

    private static DeviceTensor Upload(ComputeDevice device, ushort[] bits, bool bf16, params int[] shape) => bf16
        ? device.Upload(bits.Select(b => new BFloat16(b)).ToArray(), shape)
        : device.Upload(bits.Select(BitConverter.UInt16BitsToHalf).ToArray(), shape);

    /// <summary>K or V [batch, keyHeads, capacity, d] as [batch, heads, length, d]: query head h reads key head h / (heads / keyHeads), first length rows.</summary>
    private static float[] ExpandHeads(float[] x, int batch, int keyHeads, int heads, int capacity, int length, int d)
    {
        var result = new float[batch * heads * length * d];
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
            Array.Copy(x, ((b * keyHeads + h / (heads / keyHeads)) * capacity) * d, result, ((b * heads + h) * length) * d, length * d);
        return result;
    }
}
