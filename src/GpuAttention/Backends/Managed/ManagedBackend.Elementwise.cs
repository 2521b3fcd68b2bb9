using GpuAttention.Kernels.Cpu;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Backends.Managed;

internal sealed unsafe partial class ManagedBackend
{
    public override void Add(DeviceTensor a, DeviceTensor b, DeviceTensor y) =>
        CpuElementwise.Add(Execution, Floats(a), Floats(b), Floats(y), a.Length);

    public override void ScaleActivate(DeviceTensor x, float alpha, Activation activation, DeviceTensor y) =>
        CpuElementwise.ScaleActivate(Execution, Floats(x), Floats(y), x.Length, alpha, (int)activation);

    public override void EmbeddingGather(ReadOnlySpan<int> tokens, DeviceTensor table, DeviceTensor output, float scale) =>
        CpuElementwise.EmbeddingGather(tokens, Floats(table), Floats(output), table.Shape[1], scale);

    public override void AddPositionalEncoding(DeviceTensor x, DeviceTensor y, int rows, int width, int length, int firstPosition) =>
        CpuElementwise.AddSinusoidalPositions(Floats(x), Floats(y), rows, width, length, firstPosition);

    public override void SplitHeads(DeviceTensor x, DeviceTensor y, int batch, int length, int heads, int headDim, int capacity, int firstRow,
        int width, int firstFeature) =>
        CpuElementwise.SplitHeads(Floats(x), Floats(y), batch, length, heads, headDim, capacity, firstRow, width, firstFeature);

    public override void GatherSplitHeads(DeviceTensor x, ReadOnlySpan<int> rows, DeviceTensor y, int batch, int length, int heads, int headDim,
        int width, int firstFeature) =>
        CpuElementwise.GatherSplitHeads(Floats(x), rows, Floats(y), batch, length, heads, headDim, width, firstFeature);

    public override void MergeHeads(DeviceTensor x, DeviceTensor y, int batch, int length, int heads, int headDim) =>
        CpuElementwise.MergeHeads(Floats(x), Floats(y), batch, length, heads, headDim);

    public override void MergeHeadsGather(DeviceTensor x, ReadOnlySpan<int> rows, DeviceTensor y, int length, int heads, int headDim) =>
        CpuElementwise.MergeHeadsGather(Floats(x), rows, Floats(y), length, heads, headDim);

    public override void GatherRows(DeviceTensor x, ReadOnlySpan<int> sources, DeviceTensor y, long rowLength) =>
        CpuElementwise.GatherRows(Floats(x), sources, Floats(y), rowLength);
}
