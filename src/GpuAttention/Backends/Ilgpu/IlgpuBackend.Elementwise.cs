using GpuAttention.Problems;
using GpuAttention.Runtime;
using ILGPU;

namespace GpuAttention.Backends.Ilgpu;

internal sealed partial class IlgpuBackend
{
    public override void Add(DeviceTensor a, DeviceTensor b, DeviceTensor y) => Kernels.Add(Elements(a), Floats(a), Floats(b), Floats(y));

    public override void ScaleActivate(DeviceTensor x, float alpha, Activation activation, DeviceTensor y) =>
        Kernels.ScaleActivate(Elements(x), Floats(x), Floats(y), alpha, (int)activation);

    public override void EmbeddingGather(ReadOnlySpan<int> tokens, DeviceTensor table, DeviceTensor output, float scale)
    {
        int width = table.Shape[1];
        using var ids = Upload(tokens);
        Kernels.EmbeddingGather(new Index2D(width, tokens.Length), ids.View, Floats(table), Floats(output), width, scale);
    }

    public override void AddPositionalEncoding(DeviceTensor x, DeviceTensor y, int rows, int width, int length, int firstPosition) =>
        Kernels.PositionalEncoding(new Index2D(width, rows), Floats(x), Floats(y), width, length, firstPosition);

    public override void SplitHeads(DeviceTensor x, DeviceTensor y, int batch, int length, int heads, int headDim, int capacity, int firstRow,
        int width, int firstFeature) =>
        Kernels.SplitHeads(new Index3D(heads * headDim, length, batch), Floats(x), Floats(y), length, heads, headDim, capacity, firstRow,
            width, firstFeature);

    public override void GatherSplitHeads(DeviceTensor x, ReadOnlySpan<int> rows, DeviceTensor y, int batch, int length, int heads, int headDim,
        int width, int firstFeature)
    {
        using var indices = Upload(rows);
        Kernels.GatherSplitHeads(new Index3D(heads * headDim, length, batch), Floats(x), indices.View, Floats(y), length, heads, headDim,
            width, firstFeature);
    }

    public override void MergeHeads(DeviceTensor x, DeviceTensor y, int batch, int length, int heads, int headDim) =>
        Kernels.MergeHeads(new Index3D(heads * headDim, length, batch), Floats(x), Floats(y), length, heads, headDim);

    public override void MergeHeadsGather(DeviceTensor x, ReadOnlySpan<int> rows, DeviceTensor y, int length, int heads, int headDim)
    {
        using var indices = Upload(rows);
        Kernels.MergeHeadsGather(new Index2D(heads * headDim, rows.Length), Floats(x), indices.View, Floats(y), length, heads, headDim);
    }

    public override void GatherRows(DeviceTensor x, ReadOnlySpan<int> sources, DeviceTensor y, long rowLength)
    {
        using var indices = Upload(sources);
        Kernels.GatherRows(new Index2D(checked((int)rowLength), sources.Length), Floats(x), indices.View, Floats(y), (int)rowLength);
    }
}
