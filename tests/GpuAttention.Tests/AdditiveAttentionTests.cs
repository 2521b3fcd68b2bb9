using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Tests;

/// <summary>Additive attention, fused and unfused, on every device against the double-precision reference.</summary>
[Collection(AcceleratorCollection.Name)]
public sealed class AdditiveAttentionTests
{
    /// <summary>Every mask, both normalisers, d_q ≠ d_k ≠ d_a ≠ d_v, Lq ≠ Lk, odd lengths, a single query.</summary>
    public static TheoryData<string, string, bool, int, int> Cases()
    {
        var data = new TheoryData<string, string, bool, int, int>();
        foreach (string device in TestDevices.Names)
        foreach (string mask in MaskCases.Names)
        foreach (bool relu in new[] { false, true })
        foreach (var (lq, lk) in new[] { (1, 23), (13, 70) })
            data.Add(device, mask, relu, lq, lk);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void FusedMatchesReference(string deviceName, string maskName, bool relu, int lq, int lk) =>
        RunAndCompare(TestDevices.Get(deviceName), maskName, relu, batch: 2, heads: 2, lq, lk, dq: 12, dk: 7, da: 10, dv: 9,
            magnitude: 1f, seed: lq * 3 + lk + (relu ? 1 : 0));

    /// <summary>The production (GPU) tiles on the CPU accelerator, with a value width past one accumulator (d_v 72 > 64).</summary>
    [Fact]
    public void GpuLaunchProfileMatchesReference()
    {
        var device = TestDevices.Get(TestDevices.GpuProfileOnCpu);
        RunAndCompare(device, "causal+padding", relu: false, batch: 2, heads: 1, lq: 70, lk: 75, dq: 32, dk: 48, da: 64, dv: 72,
            magnitude: 1f, seed: 9);
        RunAndCompare(device, "window+additive", relu: true, batch: 1, heads: 2, lq: 33, lk: 40, dq: 16, dk: 16, da: 128, dv: 16,
            magnitude: 1f, seed: 10);
    }

    /// <summary>Large inputs saturate tanh at ±1: scores stay bounded by Σ|w| and the softmax stays finite.</summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void SaturatedTanhStaysStable(string deviceName) =>
        RunAndCompare(TestDevices.Get(deviceName), "padding", relu: false, batch: 2, heads: 1, lq: 9, lk: 45, dq: 5, dk: 6, da: 16, dv: 8,
            magnitude: 300f, seed: 11);

    /// <summary>Rank-3 operands (no heads axis) mean one head; the log-sum-exp is then [batch, Lq].</summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void WithoutHeadsAxisMatchesReference(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int batch = 3, lq = 4, lk = 5, dq = 3, dk = 6, da = 8, dv = 2;
        var (qv, kv, vv, wq, wk, w) = Inputs(batch, 1, lq, lk, dq, dk, da, dv, 1f, 12);
        using var q = device.Upload(qv, batch, lq, dq);
        using var k = device.Upload(kv, batch, lk, dk);
        using var v = device.Upload(vv, batch, lk, dv);
        using var tq = device.Upload(wq, dq, da);
        using var tk = device.Upload(wk, dk, da);
        using var tw = device.Upload(w, da);
        using var o = device.Allocate(batch, lq, dv);
        using var lse = device.Allocate(batch, lq);
        AdditiveAttention.Fused(q, k, v, tq, tk, tw, o, AttentionMask.Causal, logSumExp: lse);
        var (want, wantLse) = ReferenceOps.AdditiveAttention(qv, kv, vv, wq, wk, w, batch, 1, lq, lk, dq, dk, dv, da,
            new ReferenceMask { Right = 0 });
        Numerics.AssertClose(want, o.ToArray(), what: "output");
        Numerics.AssertClose(wantLse, lse.ToArray(), what: "log-sum-exp");
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void FusedEqualsUnfused(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int batch = 2, heads = 2, lq = 13, lk = 27, dq = 6, dk = 10, da = 12, dv = 5;
        var (mask, _, owned) = MaskCases.Make("causal+padding", device, batch, heads, lq, lk);
        using var _ = owned;
        var (qv, kv, vv, wq, wk, w) = Inputs(batch, heads, lq, lk, dq, dk, da, dv, 1f, 13);
        using var t = Operands.Upload(device, qv, kv, vv, wq, wk, w, batch, heads, lq, lk, dq, dk, da, dv);
        using var fused = device.Allocate(batch, heads, lq, dv);
        using var unfused = device.Allocate(batch, heads, lq, dv);
        foreach (var normalizer in new[] { ScoreNormalizer.Softmax, ScoreNormalizer.Relu })
        {
            AdditiveAttention.Fused(t.Q, t.K, t.V, t.Wq, t.Wk, t.W, fused, mask, normalizer);
            AdditiveAttention.Unfused(t.Q, t.K, t.V, t.Wq, t.Wk, t.W, unfused, mask, normalizer);
            Numerics.AssertClose(unfused.ToArray().Select(x => (double)x).ToArray(), fused.ToArray(), what: $"{normalizer}");
        }
    }

    /// <summary>A NaN in one query row makes that row NaN under either normaliser.</summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void NaNSpreadsOverItsRow(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int lq = 4, lk = 6, dq = 3, dk = 3, da = 5, dv = 4;
        var (qv, kv, vv, wq, wk, w) = Inputs(1, 1, lq, lk, dq, dk, da, dv, 1f, 14);
        qv[1 * dq + 2] = float.NaN;
        using var t = Operands.Upload(device, qv, kv, vv, wq, wk, w, 1, 1, lq, lk, dq, dk, da, dv);
        using var o = device.Allocate(1, 1, lq, dv);
        foreach (var normalizer in new[] { ScoreNormalizer.Softmax, ScoreNormalizer.Relu })
        {
            AdditiveAttention.Fused(t.Q, t.K, t.V, t.Wq, t.Wk, t.W, o, normalizer: normalizer);
            var (want, _) = ReferenceOps.AdditiveAttention(qv, kv, vv, wq, wk, w, 1, 1, lq, lk, dq, dk, dv, da, new ReferenceMask(),
                normalizer == ScoreNormalizer.Relu);
            var got = o.ToArray();
            Numerics.AssertClose(want, got, what: $"{normalizer}");
            Assert.All(got.Skip(dv).Take(dv), x => Assert.True(float.IsNaN(x)));
        }
    }

    /// <summary>
    /// The fused kernel holds no Lq×Lk buffer: its scratch (the projections, and the managed kernel's per-row tile) does not
    /// grow with Lk beyond the projected keys, while the unfused baseline holds every score.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void FusedHoldsNoScoreMatrix(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int batch = 1, heads = 2, lq = 40, dq = 4, da = 4, dv = 4;
        long Scratch(int lk, bool fused)
        {
            var (qv, kv, vv, wq, wk, w) = Inputs(batch, heads, lq, lk, dq, dq, da, dv, 1f, 15);
            using var t = Operands.Upload(device, qv, kv, vv, wq, wk, w, batch, heads, lq, lk, dq, dq, da, dv);
            using var o = device.Allocate(batch, heads, lq, dv);
            long before = device.BytesAllocated;
            device.ResetPeakBytes();
            if (fused)
                AdditiveAttention.Fused(t.Q, t.K, t.V, t.Wq, t.Wk, t.W, o, AttentionMask.Causal);
            else
                AdditiveAttention.Unfused(t.Q, t.K, t.V, t.Wq, t.Wk, t.W, o, AttentionMask.Causal);
            Assert.Equal(before, device.BytesAllocated);
            return device.PeakBytesAllocated - before;
        }
        long projections(int lk) => (long)batch * heads * (lq + lk) * da * sizeof(float);
        long shortKeys = Scratch(90, fused: true) - projections(90), longKeys = Scratch(900, fused: true) - projections(900);
        Assert.Equal(shortKeys, longKeys);
        Assert.True(longKeys < (long)lq * 900 * sizeof(float), $"fused scratch beyond the projections {longKeys} bytes");
        Assert.True(Scratch(900, fused: false) >= (long)batch * heads * lq * 900 * sizeof(float));
    }

    public static TheoryData<string, string> BadInputs() => new()
    {
        { "queryProjection", "W_q rows differ from d_q" },
        { "keyProjection", "W_k width differs from W_q's" },
        { "scoreVector", "w length differs from d_a" },
        { "v", "v rows differ from Lk" },
        { "output", "output width differs from d_v" },
        { "k", "k has no heads axis while q has" },
        { "logSumExp", "log-sum-exp beside the ReLU normaliser" },
    };

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputIsAnArgumentExceptionNamingTheArgument(string argument, string what)
    {
        var device = TestDevices.Get("cpu");
        using var q = device.Allocate(1, 2, 3, 4);
        using var k = device.Allocate(1, 2, 5, 6);
        using var kNoHeads = device.Allocate(1, 5, 6);
        using var v = device.Allocate(1, 2, 5, 7);
        using var vShort = device.Allocate(1, 2, 4, 7);
        using var wq = device.Allocate(4, 8);
        using var wqBad = device.Allocate(5, 8);
        using var wk = device.Allocate(6, 8);
        using var wkBad = device.Allocate(6, 9);
        using var w = device.Allocate(8);
        using var wBad = device.Allocate(9);
        using var o = device.Allocate(1, 2, 3, 7);
        using var oBad = device.Allocate(1, 2, 3, 6);
        using var lse = device.Allocate(1, 2, 3);
        float[] before = o.ToArray();
        Action call = argument switch
        {
            "queryProjection" => () => AdditiveAttention.Fused(q, k, v, wqBad, wk, w, o),
            "keyProjection" => () => AdditiveAttention.Fused(q, k, v, wq, wkBad, w, o),
            "scoreVector" => () => AdditiveAttention.Fused(q, k, v, wq, wk, wBad, o),
            "v" => () => AdditiveAttention.Unfused(q, k, vShort, wq, wk, w, o),
            "output" => () => AdditiveAttention.Fused(q, k, v, wq, wk, w, oBad),
            "k" => () => AdditiveAttention.Fused(q, kNoHeads, v, wq, wk, w, o),
            "logSumExp" => () => AdditiveAttention.Fused(q, k, v, wq, wk, w, o, normalizer: ScoreNormalizer.Relu, logSumExp: lse),
            _ => throw new ArgumentOutOfRangeException(nameof(argument)),
        };
        var error = Assert.ThrowsAny<ArgumentException>(call);
        Assert.True(error.ParamName == argument, $"{what}: ParamName {error.ParamName}, message {error.Message}");
        Assert.Equal(before, o.ToArray());
    }

    /// <summary>The six operands on a device: q, k, v [batch, heads, L, width], W_q [d_q, d_a], W_k [d_k, d_a], w [d_a].</summary>
    private sealed record Operands(DeviceTensor Q, DeviceTensor K, DeviceTensor V, DeviceTensor Wq, DeviceTensor Wk, DeviceTensor W) : IDisposable
    {
        public static Operands Upload(ComputeDevice device, float[] q, float[] k, float[] v, float[] wq, float[] wk, float[] w,
            int batch, int heads, int lq, int lk, int dq, int dk, int da, int dv) =>
            new(device.Upload(q, batch, heads, lq, dq), device.Upload(k, batch, heads, lk, dk), device.Upload(v, batch, heads, lk, dv),
                device.Upload(wq, dq, da), device.Upload(wk, dk, da), device.Upload(w, da));

        public void Dispose()
        {
            foreach (var tensor in new[] { Q, K, V, Wq, Wk, W })
                tensor.Dispose();
        }
    }

    private static (float[] Q, float[] K, float[] V, float[] Wq, float[] Wk, float[] W) Inputs(int batch, int heads, int lq, int lk,
        int dq, int dk, int da, int dv, float magnitude, int seed) =>
        (RandomData.Uniform(batch * heads * lq * dq, seed, magnitude), RandomData.Uniform(batch * heads * lk * dk, seed + 1, magnitude),
            RandomData.Uniform(batch * heads * lk * dv, seed + 2), RandomData.Uniform(dq * da, seed + 3),
            RandomData.Uniform(dk * da, seed + 4), RandomData.Uniform(da, seed + 5));

    private static void RunAndCompare(ComputeDevice device, string maskName, bool relu, int batch, int heads, int lq, int lk,
        int dq, int dk, int da, int dv, float magnitude, int seed)
    {
        var (qv, kv, vv, wq, wk, w) = Inputs(batch, heads, lq, lk, dq, dk, da, dv, magnitude, seed);
        var (mask, reference, owned) = MaskCases.Make(maskName, device, batch, heads, lq, lk);
        using var _ = owned;
        using var t = Operands.Upload(device, qv, kv, vv, wq, wk, w, batch, heads, lq, lk, dq, dk, da, dv);
        using var o = device.Allocate(batch, heads, lq, dv);
        using var lse = device.Allocate(batch, heads, lq);
        var normalizer = relu ? ScoreNormalizer.Relu : ScoreNormalizer.Softmax;
        AdditiveAttention.Fused(t.Q, t.K, t.V, t.Wq, t.Wk, t.W, o, mask, normalizer, relu ? null : lse);
        var (want, wantLse) = ReferenceOps.AdditiveAttention(qv, kv, vv, wq, wk, w, batch, heads, lq, lk, dq, dk, dv, da, reference, relu);
        Numerics.AssertClose(want, o.ToArray(), what: $"{maskName} {normalizer} output");
        if (!relu)
            Numerics.AssertClose(wantLse, lse.ToArray(), what: $"{maskName} log-sum-exp");
    }
}
