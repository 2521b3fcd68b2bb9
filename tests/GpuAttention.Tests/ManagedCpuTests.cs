using System.Runtime.Intrinsics;
using GpuAttention.Kernels;
using GpuAttention.Problems;
using GpuAttention.Kernels.Cpu;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Tests;

/// <summary>
/// The managed CPU backend where its structure differs from the ILGPU kernels': shapes that cross its blocking
/// (K slices of <see cref="CpuMatMul.MaxDepth"/>, row blocks of <see cref="CpuMatMul.RowBlock"/>, 16-column panels,
/// query tiles of <see cref="CpuAttention.RowTile"/> and key tiles of <see cref="CpuAttention.KeyTile"/>), its
/// skinny and batch-parallel matmul paths, its vector exp and GELU, and agreement with the ILGPU kernels.
/// The kernel tests (theories over every device) cover the rest on this backend too.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class ManagedCpuTests
{
    /// <summary>
    /// A device made with a thread count uses that many threads at most, says so in its name, and gives the same bits as the
    /// default device on products large enough to go parallel (each output belongs to one task, whatever the threads).
    /// </summary>
    [Fact]
    public void AThreadCountIsHonouredAndChangesNoResult()
    {
        using var single = ComputeDevice.CreateManagedCpu(1);
        Assert.Contains("1 thread)", single.ToString());
        Assert.Equal(1, ((GpuAttention.Backends.Managed.ManagedBackend)single.Backend).Execution.Threads);
        var shared = TestDevices.Get("cpu");
        const int m = 160, n = 144, k = 136, heads = 4, length = 200, d = 32;
        var (a, b) = (RandomData.Uniform(m * k, 81), RandomData.Uniform(k * n, 82));
        var q = RandomData.Uniform(heads * length * d, 83);
        float[] Run(ComputeDevice device)
        {
            using var ta = device.Upload(a, m, k);
            using var tb = device.Upload(b, k, n);
            using var tc = device.Allocate(m, n);
            MatMul.Multiply(ta, tb, tc);
            using var tq = device.Upload(q, 1, heads, length, d);
            using var to = device.Allocate(1, heads, length, d);
            Attention.Fused(tq, tq, tq, to, AttentionMask.Causal);
            return [.. tc.ToArray(), .. to.ToArray()];
        }
        Assert.Equal(Run(shared), Run(single));
        Assert.Equal("threads", Assert.Throws<ArgumentOutOfRangeException>(() => ComputeDevice.CreateManagedCpu(0)).ParamName);
        Assert.Equal("threads", Assert.Throws<ArgumentOutOfRangeException>(() => ComputeDevice.CreateManagedCpu(ComputeDevice.MaxThreads + 1)).ParamName);
    }

    private static ComputeDevice Cpu => TestDevices.Get("cpu");

    public static TheoryData<int, int, int, bool, bool> BlockCrossingShapes()
    {
        var data = new TheoryData<int, int, int, bool, bool>();
        // Several K slices with a ragged panel; a row-block boundary with a partial tile; C split into row and column
        // chunks by size; the skinny path both ways.
        var shapes = new (int M, int N, int K)[] { (23, 53, 800), (101, 37, 385), (261, 530, 270), (4, 70, 129), (1, 131, 33), (7, 16, 1) };
        foreach (var (m, n, k) in shapes)
        foreach (bool transA in new[] { false, true })
        foreach (bool transB in new[] { false, true })
            data.Add(m, n, k, transA, transB);
        return data;
    }

    [Theory]
    [MemberData(nameof(BlockCrossingShapes))]
    public void MatMulAcrossBlocksWithEpilogueMatchesReference(int m, int n, int k, bool transA, bool transB)
    {
        var a = RandomData.Uniform(m * k, 71);
        var b = RandomData.Uniform(k * n, 72);
        var c0 = RandomData.Uniform(m * n, 73);
        var bias = RandomData.Uniform(n, 74);
        using var ta = Cpu.Upload(a, transA ? [k, m] : [m, k]);
        using var tb = Cpu.Upload(b, transB ? [n, k] : [k, n]);
        using var tbias = Cpu.Upload(bias, n);
        using var tc = Cpu.Upload(c0, m, n);
        // Alpha, beta and the epilogue must apply once however many K slices the product takes.
        MatMul.Multiply(ta, tb, tc, transA, transB, alpha: 0.75f, beta: 0.5f, bias: tbias, activation: Activation.Gelu);
        var want = ReferenceOps.MatMul(a, b, c0, 1, m, n, k, transA, transB, false, false, 0.75, 0.5, bias, "gelu");
        Numerics.AssertClose(want, tc.ToArray(), atol: 2e-4);
    }

    [Theory]
    [InlineData(6, 20, 30, 40)]     // small products: one batch entry per task
    [InlineData(2, 130, 140, 130)]  // large products: each spread over the cores
    public void BatchedProductsMatchReference(int batch, int m, int n, int k)
    {
        var a = RandomData.Uniform(batch * m * k, 75);
        var b = RandomData.Uniform(batch * k * n, 76);
        using var ta = Cpu.Upload(a, batch, m, k);
        using var tb = Cpu.Upload(b, batch, k, n);
        using var tc = Cpu.Allocate(batch, m, n);
        MatMul.Multiply(ta, tb, tc, activation: Activation.Relu);
        Numerics.AssertClose(ReferenceOps.MatMul(a, b, null, batch, m, n, k, false, false, true, true, activation: "relu"),
            tc.ToArray());
    }

    [Fact]
    public void PackedWeightIsReusedUntilTheWeightIsWritten()
    {
        const int m = 9, n = 40, k = 33;
        var x = RandomData.Uniform(m * k, 101);
        var w1 = RandomData.Uniform(n * k, 102);
        var w2 = RandomData.Uniform(n * k, 103);
        using var tx = Cpu.Upload(x, m, k);
        using var tw = Cpu.Upload(w1, n, k);
        using var ty = Cpu.Allocate(m, n);
        long before = Cpu.BytesAllocated;
        double[] Want(float[] w) => ReferenceOps.MatMul(x, w, null, 1, m, n, k, false, true, false, false);

        // The second product with unchanged contents packs the weight and keeps it with the tensor.
        for (int call = 0; call < 3; call++)
        {
            MatMul.Multiply(tx, tw, ty, transposeB: true);
            Numerics.AssertClose(Want(w1), ty.ToArray(), what: $"call {call}");
        }
        Assert.True(Cpu.BytesAllocated > before, "the packed weight is counted as device memory");

        tw.CopyFrom(w2);
        MatMul.Multiply(tx, tw, ty, transposeB: true);
        Numerics.AssertClose(Want(w2), ty.ToArray(), what: "after an upload");
        MatMul.Multiply(tx, tw, ty, transposeB: true);
        Numerics.AssertClose(Want(w2), ty.ToArray(), what: "repacked after an upload");

        Elementwise.Scale(tw, 2f, tw);
        MatMul.Multiply(tx, tw, ty, transposeB: true);
        Numerics.AssertClose(Want(w2.Select(v => 2f * v).ToArray()), ty.ToArray(), what: "after an op wrote the weight");

        // The same tensor used untransposed is a different operand.
        using var square = Cpu.Upload(w1.AsSpan(0, k * k).ToArray(), k, k);
        for (int call = 0; call < 2; call++)
        {
            foreach (bool transposed in new[] { false, true })
            {
                using var out2 = Cpu.Allocate(m, k);
                MatMul.Multiply(tx, square, out2, transposeB: transposed);
                Numerics.AssertClose(ReferenceOps.MatMul(x, w1.AsSpan(0, k * k).ToArray(), null, 1, m, k, k, false, transposed, false, false),
                    out2.ToArray(), what: $"square, transposed {transposed}, call {call}");
            }
        }
        tw.Dispose();
        square.Dispose();
        Assert.Equal(before - (long)n * k * sizeof(float), Cpu.BytesAllocated);
    }

    [Fact]
    public void ReusedBuffersKeepAccountingAndOutliveTheirDevice()
    {
        var device = ComputeDevice.Create(DeviceKind.ManagedCpu);
        var first = device.Upload([1f, 2f, 3f], 3);
        first.Dispose();
        using (var second = device.Upload([4f, 5f, 6f], 3))
        {
            Assert.Equal([4f, 5f, 6f], second.ToArray());
            Assert.Equal(3 * sizeof(float), device.BytesAllocated);
        }
        Assert.Equal(0, device.BytesAllocated);
        var survivor = device.Allocate(5);
        device.Dispose();
        survivor.Dispose();
        Assert.True(survivor.IsDisposed);
    }

    public static TheoryData<string, int, int, int> AttentionAcrossTiles()
    {
        var data = new TheoryData<string, int, int, int>();
        foreach (string mask in MaskCases.Names)
        {
            data.Add(mask, 131, 157, 20);  // several query and key tiles, a head dim that is padded to 32
            data.Add(mask, 1, 200, 64);    // a decoding step over several key tiles
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(AttentionAcrossTiles))]
    public void FusedAttentionAcrossTilesMatchesReference(string mask, int lq, int lk, int d) =>
        AttentionTests.RunAndCompare(Cpu, mask, batch: 2, heads: 2, lq, lk, d, magnitude: 1f, seed: lq + lk + d);

    [Fact]
    public void WideWindowSpanningKeyTilesMatchesReference()
    {
        const int batch = 1, heads = 2, lq = 150, lk = 150, d = 40;
        var qv = RandomData.Uniform(batch * heads * lq * d, 81);
        var kv = RandomData.Uniform(batch * heads * lk * d, 82);
        var vv = RandomData.Uniform(batch * heads * lk * d, 83);
        using var q = Cpu.Upload(qv, batch, heads, lq, d);
        using var k = Cpu.Upload(kv, batch, heads, lk, d);
        using var v = Cpu.Upload(vv, batch, heads, lk, d);
        using var o = Cpu.Allocate(batch, heads, lq, d);
        Attention.Fused(q, k, v, o, AttentionMask.SlidingWindow(70, 3));
        var (want, _) = ReferenceOps.Attention(qv, kv, vv, batch, heads, lq, lk, d, new ReferenceMask { Left = 70, Right = 3 },
            1.0 / Math.Sqrt(d));
        Numerics.AssertClose(want, o.ToArray());
    }

    [Fact]
    public void CachePrefixAcrossKeyTilesEqualsAttentionOverThePrefix()
    {
        const int heads = 2, capacity = 150, length = 131, d = 32;
        var qv = RandomData.Uniform(heads * d, 84);
        var kv = RandomData.Uniform(heads * capacity * d, 85);
        var vv = RandomData.Uniform(heads * capacity * d, 86);
        using var q = Cpu.Upload(qv, 1, heads, 1, d);
        using var k = Cpu.Upload(kv, 1, heads, capacity, d);
        using var v = Cpu.Upload(vv, 1, heads, capacity, d);
        using var o = Cpu.Allocate(1, heads, 1, d);
        Attention.Fused(q, k, v, o, AttentionMask.Causal, keyLength: length);
        float[] Prefix(float[] x) => Enumerable.Range(0, heads).SelectMany(h => x.Skip(h * capacity * d).Take(length * d)).ToArray();
        var (want, _) = ReferenceOps.Attention(qv, Prefix(kv), Prefix(vv), 1, heads, 1, length, d, new ReferenceMask { Right = 0 },
            1.0 / Math.Sqrt(d));
        Numerics.AssertClose(want, o.ToArray());
    }

    [Fact]
    public void NaNInOneQueryRowStaysInThatRowAcrossTiles()
    {
        const int lq = 100, lk = 130, d = 16;
        var qv = RandomData.Uniform(lq * d, 87);
        qv[70 * d + 3] = float.NaN;
        using var q = Cpu.Upload(qv, 1, 1, lq, d);
        using var k = Cpu.Upload(RandomData.Uniform(lk * d, 88), 1, 1, lk, d);
        using var v = Cpu.Upload(RandomData.Uniform(lk * d, 89), 1, 1, lk, d);
        using var o = Cpu.Allocate(1, 1, lq, d);
        Attention.Fused(q, k, v, o);
        var got = o.ToArray();
        for (int i = 0; i < lq; i++)
        {
            var row = got.Skip(i * d).Take(d);
            Assert.True(i == 70 ? row.All(float.IsNaN) : row.All(float.IsFinite), $"row {i}");
        }
    }

    [Fact]
    public void AgreesWithTheIlgpuKernels()
    {
        const int batch = 2, heads = 2, lq = 37, lk = 41, d = 24, rows = batch * heads * lq;
        var q = RandomData.Uniform(batch * heads * lq * d, 91);
        var k = RandomData.Uniform(batch * heads * lk * d, 92);
        var v = RandomData.Uniform(batch * heads * lk * d, 93);
        var weight = RandomData.Uniform(d * d, 94);
        var gain = RandomData.Uniform(d, 95);
        var managed = AttentionProjectionNormSoftmax(Cpu, q, k, v, weight, gain, batch, heads, lq, lk, d);
        var kernels = AttentionProjectionNormSoftmax(TestDevices.Get("cpu-accelerator"), q, k, v, weight, gain, batch, heads, lq, lk, d);
        Assert.Equal(rows * d, managed.Length);
        Numerics.AssertClose(kernels.Select(x => (double)x).ToArray(), managed, atol: 1e-5, rtol: 1e-4);
    }

    /// <summary>softmax(0.5·LayerNorm(q + GELU(attention(q, k, v)·Wᵀ + g))) through one device's ops.</summary>
    private static float[] AttentionProjectionNormSoftmax(ComputeDevice device, float[] qv, float[] kv, float[] vv, float[] weight,
        float[] gain, int batch, int heads, int lq, int lk, int d)
    {
        int rows = batch * heads * lq;
        using var q = device.Upload(qv, batch, heads, lq, d);
        using var k = device.Upload(kv, batch, heads, lk, d);
        using var v = device.Upload(vv, batch, heads, lk, d);
        using var attended = device.Allocate(batch, heads, lq, d);
        using var w = device.Upload(weight, d, d);
        using var g = device.Upload(gain, d);
        using var residual = device.Upload(qv, rows, d);
        using var projected = device.Allocate(rows, d);
        Attention.Fused(q, k, v, attended, AttentionMask.Causal.And(AttentionMask.KeyPadding(lk, 30)));
        using var flat = device.Upload(attended.ToArray(), rows, d);
        MatMul.Multiply(flat, w, projected, transposeB: true, bias: g, activation: Activation.Gelu);
        LayerNorm.Apply(projected, g, g, projected, residual: residual);
        Softmax.Apply(projected, projected, scale: 0.5f);
        return projected.ToArray();
    }

    [Fact]
    public void VectorExpAndGeluMatchDoublePrecision()
    {
        var inputs = new List<float> { float.NegativeInfinity, float.PositiveInfinity, float.NaN, -104f, -87.5f, -87.3f, 88.7f, 89f, 0f, -0f };
        for (float x = -90f; x <= 90f; x += 0.37f)
            inputs.Add(x);
        while (inputs.Count % 8 != 0)
            inputs.Add(1f);
        for (int i = 0; i < inputs.Count; i += 8)
        {
            var x = Vector256.Create(inputs.Skip(i).Take(8).ToArray());
            var exp = CpuVector.Exp(x);
            var exp512 = CpuVector.Exp(Vector512.Create(x, x));
            var gelu = CpuVector.Gelu(x);
            for (int lane = 0; lane < 8; lane++)
            {
                float xi = x.GetElement(lane);
                double want = Math.Exp(xi);
                float got = exp.GetElement(lane);
                foreach (var (width, value) in new[] { (256, got), (512, exp512.GetElement(lane + 8)) })
                {
                    bool expOk = float.IsNaN(xi) ? float.IsNaN(value)
                        : want < 1.2e-38 ? value == 0f || Math.Abs(value - want) <= 1.2e-38
                        : want > float.MaxValue ? float.IsPositiveInfinity(value)
                        : Math.Abs(value - want) <= 3e-7 * want;
                    Assert.True(expOk, $"Vector{width} exp({xi:R}) = {value:R}, want {want:R}");
                }
                if (!float.IsFinite(xi))
                    continue;
                double wantGelu = ReferenceOps.Gelu(xi);
                Assert.True(Math.Abs(gelu.GetElement(lane) - wantGelu) <= 1e-6 * Math.Max(1, Math.Abs(xi)),
                    $"gelu({xi:R}) = {gelu.GetElement(lane):R}, want {wantGelu:R}");
                Assert.Equal(ActivationMath.Gelu(xi), gelu.GetElement(lane), 1e-6f * Math.Max(1, Math.Abs(xi)));
            }
        }
    }
}
