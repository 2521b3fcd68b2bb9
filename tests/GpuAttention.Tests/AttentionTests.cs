using GpuAttention.Backends.Ilgpu;
using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;
using GpuAttention.Reference;

namespace GpuAttention.Tests;

[Collection(AcceleratorCollection.Name)]
public sealed class AttentionTests
{
    /// <summary>Every mask over self-attention (Lq = Lk), cross attention, a decoding step (Lq = 1) and lengths off the tiles.</summary>
    public static TheoryData<string, string, int, int, int> MaskCasesByShape()
    {
        var data = new TheoryData<string, string, int, int, int>();
        foreach (string device in TestDevices.Names)
        foreach (string mask in MaskCases.Names)
        foreach (var (lq, lk) in new[] { (19, 19), (1, 23), (37, 11), (5, 33) })
            data.Add(device, mask, lq, lk, 32);
        return data;
    }

    public static TheoryData<string, int> HeadDims()
    {
        var data = new TheoryData<string, int>();
        foreach (string device in TestDevices.Names)
        foreach (int d in new[] { 1, 20, 32, 64, 128, 256 })
            data.Add(device, d);
        return data;
    }

    [Theory]
    [MemberData(nameof(MaskCasesByShape))]
    public void FusedMatchesReferenceForEveryMask(string deviceName, string maskName, int lq, int lk, int d) =>
        RunAndCompare(TestDevices.Get(deviceName), maskName, batch: 2, heads: 2, lq, lk, d, magnitude: 1f, seed: lq * 7 + lk);

    /// <summary>The ReLU normaliser in the fused kernels: every mask, a decoding step (the managed row-by-row path) and a tile-sized problem.</summary>
    public static TheoryData<string, string, int, int> ReluCases()
    {
        var data = new TheoryData<string, string, int, int>();
        foreach (string device in TestDevices.Names)
        foreach (string mask in MaskCases.Names)
        foreach (var (lq, lk) in new[] { (1, 23), (37, 11) })
            data.Add(device, mask, lq, lk);
        return data;
    }

    [Theory]
    [MemberData(nameof(ReluCases))]
    public void FusedReluNormalizerMatchesReference(string deviceName, string maskName, int lq, int lk) =>
        RunAndCompare(TestDevices.Get(deviceName), maskName, batch: 2, heads: 2, lq, lk, 24, magnitude: 1f, seed: lq + lk, relu: true);

    [Fact]
    public void FusedReluNormalizerOnGpuLaunchProfileMatchesReference() =>
        RunAndCompare(TestDevices.Get(TestDevices.GpuProfileOnCpu), "causal+padding", batch: 2, heads: 1, lq: 70, lk: 75, d: 64,
            magnitude: 1f, seed: 8, relu: true);

    /// <summary>A NaN in one query makes that row NaN under either normaliser, and no other row.</summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void NaNSpreadsOverItsRowOnly(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int lq = 5, lk = 7, d = 8;
        var qv = RandomData.Uniform(lq * d, 71);
        qv[2 * d + 3] = float.NaN;
        var kv = RandomData.Uniform(lk * d, 72);
        var vv = RandomData.Uniform(lk * d, 73);
        using var q = device.Upload(qv, 1, 1, lq, d);
        using var k = device.Upload(kv, 1, 1, lk, d);
        using var v = device.Upload(vv, 1, 1, lk, d);
        using var o = device.Allocate(1, 1, lq, d);
        foreach (var normalizer in new[] { ScoreNormalizer.Softmax, ScoreNormalizer.Relu })
        {
            Attention.Fused(q, k, v, o, normalizer: normalizer);
            var (want, _) = ReferenceOps.Attention(qv, kv, vv, 1, 1, lq, lk, d, new ReferenceMask(), 1 / Math.Sqrt(d),
                reluNormalizer: normalizer == ScoreNormalizer.Relu);
            var got = o.ToArray();
            Numerics.AssertClose(want, got, what: $"{normalizer}");
            Assert.All(got.Skip(2 * d).Take(d), x => Assert.True(float.IsNaN(x)));
        }
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void ReluNormalizerHasNoLogSumExp(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        using var q = device.Allocate(1, 1, 3, 4);
        using var o = device.Allocate(1, 1, 3, 4);
        using var lse = device.Allocate(1, 1, 3);
        var error = Assert.Throws<ArgumentException>(() =>
            Attention.Fused(q, q, q, o, logSumExp: lse, normalizer: ScoreNormalizer.Relu));
        Assert.Equal("logSumExp", error.ParamName);
    }

    [Theory]
    [MemberData(nameof(HeadDims))]
    public void FusedMatchesReferenceForEachHeadDim(string deviceName, int d) =>
        RunAndCompare(TestDevices.Get(deviceName), "causal", batch: 1, heads: 3, lq: 21, lk: 29, d, magnitude: 1f, seed: d);

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void LargeMagnitudeScoresStayStable(string deviceName) =>
        RunAndCompare(TestDevices.Get(deviceName), "padding", batch: 2, heads: 1, lq: 9, lk: 45, d: 16, magnitude: 12f, seed: 3);

    [Fact]
    public void GpuLaunchProfileMatchesReference()
    {
        var device = TestDevices.Get(TestDevices.GpuProfileOnCpu);
        RunAndCompare(device, "causal+padding", batch: 2, heads: 1, lq: 70, lk: 75, d: 64, magnitude: 1f, seed: 5);
        RunAndCompare(device, "window+additive", batch: 2, heads: 1, lq: 33, lk: 40, d: 128, magnitude: 1f, seed: 6);
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void FusedEqualsUnfused(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int batch = 2, heads = 2, lq = 13, lk = 27, d = 24;
        var (mask, _, owned) = MaskCases.Make("causal+padding", device, batch, heads, lq, lk);
        using var _ = owned;
        using var q = device.Upload(RandomData.Uniform(batch * heads * lq * d, 61), batch, heads, lq, d);
        using var k = device.Upload(RandomData.Uniform(batch * heads * lk * d, 62), batch, heads, lk, d);
        using var v = device.Upload(RandomData.Uniform(batch * heads * lk * d, 63), batch, heads, lk, d);
        using var fused = device.Allocate(batch, heads, lq, d);
        using var unfused = device.Allocate(batch, heads, lq, d);
        foreach (var normalizer in new[] { ScoreNormalizer.Softmax, ScoreNormalizer.Relu })
        {
            Attention.Fused(q, k, v, fused, mask, normalizer: normalizer);
            Attention.Unfused(q, k, v, unfused, mask, normalizer: normalizer);
            Numerics.AssertClose(unfused.ToArray().Select(x => (double)x).ToArray(), fused.ToArray(), what: $"{normalizer}");
        }
    }

    /// <summary>
    /// Device memory counts every tensor and every scratch buffer an op holds (the managed kernels' workspaces, the ILGPU
    /// backend's mask buffers), so the peak during a call shows what it allocates. The fused kernel's scratch must not grow
    /// with Lk, and stay below one head's score matrix; the unfused path holds all B·H·Lq·Lk scores. Both key lengths keep
    /// the managed backend below its threading threshold, so the same number of threads hold scratch in both runs.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void FusedScratchDoesNotGrowWithKeysWhileUnfusedHoldsTheScores(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int batch = 1, heads = 2, lq = 40, d = 8;
        long FusedScratch(int lk) => Scratch(device, batch, heads, lq, lk, d, fused: true);
        long shortKeys = FusedScratch(90), longKeys = FusedScratch(900);
        Assert.Equal(shortKeys, longKeys);
        Assert.True(longKeys < (long)lq * 900 * sizeof(float), $"fused scratch {longKeys} bytes");
        Assert.True(Scratch(device, batch, heads, lq, 900, d, fused: false) >= (long)batch * heads * lq * 900 * sizeof(float));
    }

    private static long Scratch(ComputeDevice device, int batch, int heads, int lq, int lk, int d, bool fused)
    {
        using var q = device.Upload(RandomData.Uniform(batch * heads * lq * d, 64), batch, heads, lq, d);
        using var k = device.Upload(RandomData.Uniform(batch * heads * lk * d, 65), batch, heads, lk, d);
        using var v = device.Upload(RandomData.Uniform(batch * heads * lk * d, 66), batch, heads, lk, d);
        using var o = device.Allocate(batch, heads, lq, d);
        long before = device.BytesAllocated;
        device.ResetPeakBytes();
        if (fused)
            Attention.Fused(q, k, v, o, AttentionMask.Causal);
        else
            Attention.Unfused(q, k, v, o, AttentionMask.Causal);
        device.Synchronize();
        Assert.Equal(before, device.BytesAllocated);
        return device.PeakBytesAllocated - before;
    }

    [Fact]
    public void TilingDependsOnHeadDimAndProfileOnlyAndFitsCudaSharedMemory()
    {
        foreach (int d in new[] { 32, 64, 128, 256 })
        {
            var tiling = AttentionTiling.Choose(d, LaunchProfile.Gpu)!;
            Assert.True(tiling.SharedFloats * sizeof(float) <= LaunchProfile.CudaSharedMemoryLimit, $"d={d}: {tiling}");
            Assert.True(LaunchProfile.Gpu.AttentionGroupSize % tiling.RowTile == 0, $"d={d}: {tiling}");
        }
    }

    internal static void RunAndCompare(ComputeDevice device, string maskName, int batch, int heads, int lq, int lk, int d,
        float magnitude, int seed, bool relu = false)
    {
        var qv = RandomData.Uniform(batch * heads * lq * d, seed, magnitude);
        var kv = RandomData.Uniform(batch * heads * lk * d, seed + 1, magnitude);
        var vv = RandomData.Uniform(batch * heads * lk * d, seed + 2);
        var (mask, reference, owned) = MaskCases.Make(maskName, device, batch, heads, lq, lk);
        using var _ = owned;
        using var q = device.Upload(qv, batch, heads, lq, d);
        using var k = device.Upload(kv, batch, heads, lk, d);
        using var v = device.Upload(vv, batch, heads, lk, d);
        using var o = device.Allocate(batch, heads, lq, d);
        using var lse = device.Allocate(batch, heads, lq);
        var normalizer = relu ? ScoreNormalizer.Relu : ScoreNormalizer.Softmax;
        Attention.Fused(q, k, v, o, mask, logSumExp: relu ? null : lse, normalizer: normalizer);
        var (want, wantLse) = ReferenceOps.Attention(qv, kv, vv, batch, heads, lq, lk, d, reference, 1.0 / Math.Sqrt(d), relu);
        Numerics.AssertClose(want, o.ToArray(), what: $"{maskName} {normalizer} output");
        if (!relu)
            Numerics.AssertClose(wantLse, lse.ToArray(), what: $"{maskName} log-sum-exp");
    }
}
