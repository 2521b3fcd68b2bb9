using GpuAttention.Ops;
using GpuAttention.Reference;

namespace GpuAttention.Tests;

[Collection(AcceleratorCollection.Name)]
public sealed class HeadLayoutTests
{
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void SplitIntoACacheMergeAndGatherMoveTheRightElements(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int batch = 2, length = 3, heads = 4, headDim = 5, capacity = 7, firstRow = 2;
        var x = RandomData.Uniform(batch * length * heads * headDim, 71);
        using var tx = device.Upload(x, batch, length, heads * headDim);
        using var cache = device.Upload(new float[batch * heads * capacity * headDim], batch, heads, capacity, headDim);
        HeadLayout.Split(tx, cache, firstRow);
        var got = cache.ToArray();
        var want = new double[got.Length];
        for (int b = 0; b < batch; b++)
        for (int l = 0; l < length; l++)
        for (int h = 0; h < heads; h++)
        for (int c = 0; c < headDim; c++)
            want[((b * heads + h) * capacity + firstRow + l) * headDim + c] = x[(b * length + l) * heads * headDim + h * headDim + c];
        Numerics.AssertClose(want, got, 0, 0);

        using var split = device.Allocate(batch, heads, length, headDim);
        using var merged = device.Allocate(batch, length, heads * headDim);
        HeadLayout.Split(tx, split);
        HeadLayout.Merge(split, merged);
        Numerics.AssertClose(x.Select(v => (double)v).ToArray(), merged.ToArray(), 0, 0);

        using var gathered = device.Allocate(batch, heads, capacity, headDim);
        HeadLayout.GatherBatch(cache, [1, 1], gathered);
        var second = got.Skip(got.Length / 2).Select(v => (double)v).ToArray();
        Numerics.AssertClose([.. second, .. second], gathered.ToArray(), 0, 0);
    }

    /// <summary>
    /// The parts of a fused Q|K|V product: Split with a first feature (into a cache at a row, and whole), the gathered
    /// Split of packed rows into the padded layout, and the Merge that gathers them back — each element checked against
    /// the index arithmetic written out here.
    /// </summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void FusedProjectionPartsSplitAndMergeByFeatureAndRow(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int heads = 2, headDim = 3, d = heads * headDim, width = 3 * d;
        var packing = new Model.PackedSequences([2, 5, 1]);
        int total = packing.Total, padded = packing.PaddedLength, batch = packing.Batch;
        var x = RandomData.Uniform(total * width, 75);
        using var stacked = device.Upload(x, 1, total, width);
        for (int part = 0; part < 3; part++)
        {
            using var split = device.Allocate(batch, heads, padded, headDim);
            HeadLayout.GatherSplit(stacked, packing.PaddedSources, split, firstFeature: part * d);
            var got = split.ToArray();
            int[] lengths = [2, 5, 1], offsets = [0, 2, 7];
            for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
            for (int t = 0; t < padded; t++)
            for (int c = 0; c < headDim; c++)
            {
                int source = offsets[b] + (t < lengths[b] ? t : 0);
                Assert.Equal(x[source * width + part * d + h * headDim + c], got[((b * heads + h) * padded + t) * headDim + c]);
            }

            using var merged = device.Allocate(1, total, d);
            HeadLayout.MergeGather(split, packing.PackedSources, merged);
            var back = merged.ToArray();
            for (int r = 0; r < total; r++)
            for (int f = 0; f < d; f++)
                Assert.Equal(x[r * width + part * d + f], back[r * d + f]);
        }

        // One batch entry of 8 rows: the value part into a cache of 11 rows at row 2.
        using var rows = device.Upload(x, 1, total, width);
        using var cache = device.Upload(new float[heads * 11 * headDim], 1, heads, 11, headDim);
        HeadLayout.Split(rows, cache, firstRow: 2, firstFeature: 2 * d);
        var cached = cache.ToArray();
        for (int h = 0; h < heads; h++)
        for (int t = 0; t < 11; t++)
        for (int c = 0; c < headDim; c++)
            Assert.Equal(t >= 2 && t < 2 + total ? x[(t - 2) * width + 2 * d + h * headDim + c] : 0f, cached[(h * 11 + t) * headDim + c]);

        using var wrong = device.Allocate(batch, heads, padded, headDim);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => HeadLayout.GatherSplit(stacked, packing.PaddedSources, wrong, firstFeature: 2 * d + 1)).ParamName);
        Assert.Equal("rows", Assert.Throws<ArgumentException>(() => HeadLayout.GatherSplit(stacked, packing.PaddedSources[1..], wrong)).ParamName);
        Assert.Equal("rows", Assert.Throws<ArgumentOutOfRangeException>(() => HeadLayout.GatherSplit(stacked, [.. packing.PaddedSources[..^1], total], wrong)).ParamName);
        using var packedOut = device.Allocate(1, total, d);
        Assert.Equal("rows", Assert.Throws<ArgumentOutOfRangeException>(() => HeadLayout.MergeGather(wrong, [.. packing.PackedSources[..^1], batch * padded], packedOut)).ParamName);
        Assert.Equal("firstFeature", Assert.Throws<ArgumentOutOfRangeException>(() => HeadLayout.Split(rows, cache, 0, -1)).ParamName);
    }

    /// <summary>Packing a padded batch's real rows and unpacking them (PackedSequences' maps) move exactly the rows they name.</summary>
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void GatherRowsPacksAndUnpacksSequences(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int width = 3;
        var packing = new Model.PackedSequences([2, 5, 1]);
        Assert.Equal(8, packing.Total);
        Assert.Equal(5, packing.PaddedLength);
        Assert.Equal([0, 2, 7], packing.Offsets);
        var x = RandomData.Uniform(packing.Total * width, 72);
        using var packed = device.Upload(x, 1, packing.Total, width);
        using var padded = device.Allocate(packing.Batch, packing.PaddedLength, width);
        HeadLayout.GatherRows(packed, packing.PaddedSources, padded);
        var got = padded.ToArray();
        // Sequence b's token t sits at padded row b·5 + t; padding rows copy the sequence's first token.
        int[] lengths = [2, 5, 1], offsets = [0, 2, 7];
        for (int b = 0; b < 3; b++)
        for (int t = 0; t < 5; t++)
        for (int c = 0; c < width; c++)
            Assert.Equal(x[(offsets[b] + (t < lengths[b] ? t : 0)) * width + c], got[(b * 5 + t) * width + c]);

        using var back = device.Allocate(1, packing.Total, width);
        HeadLayout.GatherRows(padded, packing.PackedSources, back);
        Assert.Equal(x, back.ToArray());

        var error = Assert.Throws<ArgumentOutOfRangeException>(() => HeadLayout.GatherRows(packed, [.. packing.PaddedSources[..^1], 8], padded));
        Assert.Equal("sources", error.ParamName);
        using var narrow = device.Allocate(packing.Batch, packing.PaddedLength, width + 1);
        Assert.Equal("y", Assert.Throws<ArgumentException>(() => HeadLayout.GatherRows(packed, packing.PaddedSources, narrow)).ParamName);
    }

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void FusedAttentionOverACachePrefixEqualsAttentionOverThePrefix(string deviceName)
    {
        var device = TestDevices.Get(deviceName);
        const int batch = 1, heads = 2, capacity = 20, used = 13, headDim = 8;
        var q = RandomData.Uniform(batch * heads * headDim, 72);
        var k = RandomData.Uniform(batch * heads * capacity * headDim, 73);
        var v = RandomData.Uniform(batch * heads * capacity * headDim, 74);
        using var tq = device.Upload(q, batch, heads, 1, headDim);
        using var tk = device.Upload(k, batch, heads, capacity, headDim);
        using var tv = device.Upload(v, batch, heads, capacity, headDim);
        using var to = device.Allocate(batch, heads, 1, headDim);
        Attention.Fused(tq, tk, tv, to, AttentionMask.Causal, keyLength: used);
        float[] Prefix(float[] all) => Enumerable.Range(0, heads)
            .SelectMany(h => all.Skip(h * capacity * headDim).Take(used * headDim)).ToArray();
        var (want, _) = ReferenceOps.Attention(q, Prefix(k), Prefix(v), batch, heads, 1, used, headDim,
            new ReferenceMask { Right = 0 }, 1 / Math.Sqrt(headDim));
        Numerics.AssertClose(want, to.ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => Attention.Fused(tq, tk, tv, to, keyLength: capacity + 1));
    }
}
