using GpuAttention.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAttention.Runtime;

/// <summary>
/// The kernels of one accelerator, each compiled on first use and then reused. <see cref="Lazy{T}"/>
/// (execution-and-publication mode) makes the first use safe when several threads call ops at once.
/// </summary>
internal sealed class KernelLibrary
{
    private readonly Lazy<Action<Index3D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulParams>> matMulNaive;
    private readonly Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulParams, int>> matMulTiled;
    private readonly Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, MaskParams, SoftmaxParams>> maskedSoftmax;
    private readonly Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int>> layerNorm;
    private readonly Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MaskParams, AttentionParams>> flashAttention;
    private readonly Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>> add;
    private readonly Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, float, int>> scaleActivate;
    private readonly Lazy<Action<Index2D, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, float>> embeddingGather;
    private readonly Lazy<Action<Index2D, ArrayView<float>, ArrayView<float>, int, int, int>> positionalEncoding;
    private readonly Lazy<Action<Index3D, ArrayView<float>, ArrayView<float>, int, int, int, int, int>> splitHeads;
    private readonly Lazy<Action<Index3D, ArrayView<float>, ArrayView<float>, int, int, int>> mergeHeads;
    private readonly Lazy<Action<Index2D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>> gatherRows;

    public KernelLibrary(Accelerator accelerator)
    {
        matMulNaive = new(() => accelerator.LoadAutoGroupedStreamKernel<Index3D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulParams>(MatMulKernels.Naive));
        matMulTiled = new(() => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulParams, int>(MatMulKernels.Tiled));
        maskedSoftmax = new(() => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, MaskParams, SoftmaxParams>(SoftmaxKernels.MaskedSoftmax));
        layerNorm = new(() => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int>(LayerNormKernels.LayerNorm));
        flashAttention = new(() => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MaskParams, AttentionParams>(AttentionKernels.FlashForward));
        add = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Add));
        scaleActivate = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float, int>(ElementwiseKernels.ScaleActivate));
        embeddingGather = new(() => accelerator.LoadAutoGroupedStreamKernel<Index2D, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, float>(ElementwiseKernels.EmbeddingGather));
        positionalEncoding = new(() => accelerator.LoadAutoGroupedStreamKernel<Index2D, ArrayView<float>, ArrayView<float>, int, int, int>(ElementwiseKernels.AddSinusoidalPositions));
        splitHeads = new(() => accelerator.LoadAutoGroupedStreamKernel<Index3D, ArrayView<float>, ArrayView<float>, int, int, int, int, int>(ElementwiseKernels.SplitHeads));
        mergeHeads = new(() => accelerator.LoadAutoGroupedStreamKernel<Index3D, ArrayView<float>, ArrayView<float>, int, int, int>(ElementwiseKernels.MergeHeads));
        gatherRows = new(() => accelerator.LoadAutoGroupedStreamKernel<Index2D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(ElementwiseKernels.GatherRows));
    }

    public Action<Index3D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulParams> MatMulNaive => matMulNaive.Value;
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulParams, int> MatMulTiled => matMulTiled.Value;
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, MaskParams, SoftmaxParams> MaskedSoftmax => maskedSoftmax.Value;
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int> LayerNorm => layerNorm.Value;
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MaskParams, AttentionParams> FlashAttention => flashAttention.Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Add => add.Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, float, int> ScaleActivate => scaleActivate.Value;
    public Action<Index2D, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, float> EmbeddingGather => embeddingGather.Value;
    public Action<Index2D, ArrayView<float>, ArrayView<float>, int, int, int> PositionalEncoding => positionalEncoding.Value;
    public Action<Index3D, ArrayView<float>, ArrayView<float>, int, int, int, int, int> SplitHeads => splitHeads.Value;
    public Action<Index3D, ArrayView<float>, ArrayView<float>, int, int, int> MergeHeads => mergeHeads.Value;
    public Action<Index2D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> GatherRows => gatherRows.Value;
}
