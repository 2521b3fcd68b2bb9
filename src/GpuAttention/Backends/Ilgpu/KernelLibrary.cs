using GpuAttention.Kernels;
using GpuAttention.Problems;
using ILGPU;
using ILGPU.Runtime;

namespace GpuAttention.Backends.Ilgpu;

/// <summary>
/// The kernels of one accelerator, each compiled on first use and then reused. <see cref="Lazy{T}"/>
/// (execution-and-publication mode) makes the first use safe when several threads call ops at once.
/// </summary>
internal sealed class KernelLibrary
{
    private readonly Lazy<Action<Index3D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulProblem>> matMulNaive;
    private readonly Dictionary<(int GroupX, int GroupY, int Depth), Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulProblem>>> matMulTiled;
    private readonly Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, MaskViews, SoftmaxProblem, int>> maskedSoftmax;
    private readonly Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LayerNormProblem, int>> layerNorm;
    private readonly Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, float>> l2Normalize;
    private readonly Dictionary<(int Capacity, bool Additive, bool Relu), Lazy<FlashAttentionKernel>> flashAttention;
    private readonly Dictionary<(bool Bf16, int HeadDim, bool SixteenBitOutput), Lazy<TensorCoreAttentionKernel>> tensorCoreAttention;
    private readonly Lazy<Action<Index2D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>> additiveScores;
    private readonly Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>> add;
    private readonly Lazy<Action<Index1D, ArrayView<float>, ArrayView<float>, float, int>> scaleActivate;
    private readonly Lazy<Action<Index2D, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, float>> embeddingGather;
    private readonly Lazy<Action<Index2D, ArrayView<float>, ArrayView<float>, int, int, int>> positionalEncoding;
    private readonly Lazy<Action<Index3D, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int>> splitHeads;
    private readonly Lazy<Action<Index3D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, int, int>> gatherSplitHeads;
    private readonly Lazy<Action<Index3D, ArrayView<float>, ArrayView<float>, int, int, int>> mergeHeads;
    private readonly Lazy<Action<Index2D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int>> mergeHeadsGather;
    private readonly Lazy<Action<KernelConfig, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>> embeddingLayerNorm;
    private readonly Lazy<Action<Index2D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>> gatherRows;
    private readonly Dictionary<(bool Bf16, bool TransA, bool TransB, bool SixteenBitOutput), Lazy<TensorCoreMatMulKernel>> tensorCoreMatMul = [];
    private readonly Lazy<Action<Index1D, ArrayView<float>, ArrayView<ushort>>> f32ToF16, f32ToBF16;
    private readonly Lazy<Action<Index1D, ArrayView<ushort>, ArrayView<float>>> f16ToF32, bf16ToF32;
    private readonly Lazy<Action<Index1D, ArrayView<ushort>, ArrayView<ushort>>> f16ToBF16, bf16ToF16;

    public KernelLibrary(Accelerator accelerator)
    {
        matMulNaive = new(() => accelerator.LoadAutoGroupedStreamKernel<Index3D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulProblem>(MatMulKernels.Naive));
        matMulTiled = MatMulKernels.CompiledTiles.ToDictionary(
            tile => (tile.GroupX, tile.GroupY, tile.Depth),
            tile => new Lazy<Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulProblem>>(() =>
                accelerator.LoadStreamKernel(MatMulKernels.TiledFor(tile))));
        maskedSoftmax = new(() => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, MaskViews, SoftmaxProblem, int>(SoftmaxKernels.MaskedSoftmax));
        layerNorm = new(() => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LayerNormProblem, int>(LayerNormKernels.LayerNorm));
        l2Normalize = new(() => accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, float>(LayerNormKernels.L2Normalize));
        flashAttention = new()
        {
            [(8, false, false)] = Flash<Columns8, DotProductScore, SoftmaxWeights>(accelerator),
            [(16, false, false)] = Flash<Pair<Columns8>, DotProductScore, SoftmaxWeights>(accelerator),
            [(32, false, false)] = Flash<Pair<Pair<Columns8>>, DotProductScore, SoftmaxWeights>(accelerator),
            [(8, false, true)] = Flash<Columns8, DotProductScore, ReluWeights>(accelerator),
            [(16, false, true)] = Flash<Pair<Columns8>, DotProductScore, ReluWeights>(accelerator),
            [(32, false, true)] = Flash<Pair<Pair<Columns8>>, DotProductScore, ReluWeights>(accelerator),
            [(8, true, false)] = Flash<Columns8, AdditiveScore, SoftmaxWeights>(accelerator),
            [(16, true, false)] = Flash<Pair<Columns8>, AdditiveScore, SoftmaxWeights>(accelerator),
            [(32, true, false)] = Flash<Pair<Pair<Columns8>>, AdditiveScore, SoftmaxWeights>(accelerator),
            [(8, true, true)] = Flash<Columns8, AdditiveScore, ReluWeights>(accelerator),
            [(16, true, true)] = Flash<Pair<Columns8>, AdditiveScore, ReluWeights>(accelerator),
            [(32, true, true)] = Flash<Pair<Pair<Columns8>>, AdditiveScore, ReluWeights>(accelerator),
        };
        tensorCoreAttention = new()
        {
            [(true, 64, false)] = TensorCoreFlash<Bf16Mma, Bf16Pair, HeadPair<HeadPair<HeadSlice16>>, F32Output>(accelerator, (o, _) => new F32Output { Values = o }),
            [(true, 128, false)] = TensorCoreFlash<Bf16Mma, Bf16Pair, HeadPair<HeadPair<HeadPair<HeadSlice16>>>, F32Output>(accelerator, (o, _) => new F32Output { Values = o }),
            [(false, 64, false)] = TensorCoreFlash<F16Mma, F16Pair, HeadPair<HeadPair<HeadSlice16>>, F32Output>(accelerator, (o, _) => new F32Output { Values = o }),
            [(false, 128, false)] = TensorCoreFlash<F16Mma, F16Pair, HeadPair<HeadPair<HeadPair<HeadSlice16>>>, F32Output>(accelerator, (o, _) => new F32Output { Values = o }),
            [(true, 64, true)] = TensorCoreFlash<Bf16Mma, Bf16Pair, HeadPair<HeadPair<HeadSlice16>>, SixteenBitOutput<Bf16Pair>>(accelerator, (_, o) => new SixteenBitOutput<Bf16Pair> { Values = o }),
            [(true, 128, true)] = TensorCoreFlash<Bf16Mma, Bf16Pair, HeadPair<HeadPair<HeadPair<HeadSlice16>>>, SixteenBitOutput<Bf16Pair>>(accelerator, (_, o) => new SixteenBitOutput<Bf16Pair> { Values = o }),
            [(false, 64, true)] = TensorCoreFlash<F16Mma, F16Pair, HeadPair<HeadPair<HeadSlice16>>, SixteenBitOutput<F16Pair>>(accelerator, (_, o) => new SixteenBitOutput<F16Pair> { Values = o }),
            [(false, 128, true)] = TensorCoreFlash<F16Mma, F16Pair, HeadPair<HeadPair<HeadPair<HeadSlice16>>>, SixteenBitOutput<F16Pair>>(accelerator, (_, o) => new SixteenBitOutput<F16Pair> { Values = o }),
        };
        additiveScores = new(() => accelerator.LoadAutoGroupedStreamKernel<Index2D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int>(AttentionKernels.AdditiveScores));
        add = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>(ElementwiseKernels.Add));
        scaleActivate = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, float, int>(ElementwiseKernels.ScaleActivate));
        embeddingGather = new(() => accelerator.LoadAutoGroupedStreamKernel<Index2D, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, float>(ElementwiseKernels.EmbeddingGather));
        positionalEncoding = new(() => accelerator.LoadAutoGroupedStreamKernel<Index2D, ArrayView<float>, ArrayView<float>, int, int, int>(ElementwiseKernels.AddSinusoidalPositions));
        splitHeads = new(() => accelerator.LoadAutoGroupedStreamKernel<Index3D, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int>(ElementwiseKernels.SplitHeads));
        gatherSplitHeads = new(() => accelerator.LoadAutoGroupedStreamKernel<Index3D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, int, int>(ElementwiseKernels.GatherSplitHeads));
        mergeHeads = new(() => accelerator.LoadAutoGroupedStreamKernel<Index3D, ArrayView<float>, ArrayView<float>, int, int, int>(ElementwiseKernels.MergeHeads));
        mergeHeadsGather = new(() => accelerator.LoadAutoGroupedStreamKernel<Index2D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int>(ElementwiseKernels.MergeHeadsGather));
        embeddingLayerNorm = new(() => accelerator.LoadStreamKernel<ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float>(LayerNormKernels.EmbeddingLayerNorm));
        gatherRows = new(() => accelerator.LoadAutoGroupedStreamKernel<Index2D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>(ElementwiseKernels.GatherRows));
        AddTensorCoreGemms<Bf16Mma, F32ToBF16, BF16ToF32>(accelerator, bf16: true);
        AddTensorCoreGemms<F16Mma, F32ToF16, F16ToF32>(accelerator, bf16: false);
        f32ToF16 = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<ushort>>(ElementwiseKernels.Convert<float, ushort, F32ToF16>));
        f32ToBF16 = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<ushort>>(ElementwiseKernels.Convert<float, ushort, F32ToBF16>));
        f16ToF32 = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>>(ElementwiseKernels.Convert<ushort, float, F16ToF32>));
        bf16ToF32 = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>>(ElementwiseKernels.Convert<ushort, float, BF16ToF32>));
        f16ToBF16 = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<ushort>>(ElementwiseKernels.Convert<ushort, ushort, F16ToBF16>));
        bf16ToF16 = new(() => accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<ushort>>(ElementwiseKernels.Convert<ushort, ushort, BF16ToF16>));
    }

    public Action<Index3D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulProblem> MatMulNaive => matMulNaive.Value;
    /// <summary>The tiled matmul compiled for a launch shape of <see cref="MatMulKernels.CompiledTiles"/> (LaunchProfile checks it is one).</summary>
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MatMulProblem> MatMulTiled(int groupX, int groupY, int depth) =>
        matMulTiled[(groupX, groupY, depth)].Value;
    /// <summary>
    /// The tensor-core GEMM for bf16 or f16 operands, A stored transposed or not, B stored transposed or not, C in F32 or
    /// in the operands' 16-bit format.
    /// </summary>
    public TensorCoreMatMulKernel TensorCoreMatMul(bool bf16, bool transA, bool transB, bool sixteenBitOutput) =>
        tensorCoreMatMul[(bf16, transA, transB, sixteenBitOutput)].Value;
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, MaskViews, SoftmaxProblem, int> MaskedSoftmax => maskedSoftmax.Value;
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, LayerNormProblem, int> LayerNorm => layerNorm.Value;
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, int, float> L2Normalize => l2Normalize.Value;
    /// <summary>
    /// The fused attention kernel whose register accumulator holds <paramref name="capacity"/> columns (8, 16 or 32), for
    /// dot-product or additive scores and the softmax or ReLU normaliser.
    /// </summary>
    public FlashAttentionKernel FlashAttention(int capacity, bool additive, bool relu) =>
        flashAttention.TryGetValue((capacity, additive, relu), out var kernel)
            ? kernel.Value
            : throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "compiled accumulator capacities are 8, 16 and 32");
    public Action<Index2D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int> AdditiveScores => additiveScores.Value;

    /// <summary>The tensor-core attention for bf16 (else f16) operands, a head dimension of 64 or 128, and a 16-bit (else F32) output.</summary>
    public TensorCoreAttentionKernel TensorCoreAttention(bool bf16, int headDim, bool sixteenBitOutput) =>
        tensorCoreAttention.TryGetValue((bf16, headDim, sixteenBitOutput), out var kernel)
            ? kernel.Value
            : throw new ArgumentOutOfRangeException(nameof(headDim), headDim, "the tensor-core attention is compiled for head dimensions 64 and 128");

    /// <summary>The eight GEMM specialisations of one 16-bit format: A and B each as stored or transposed, C in F32 or that format.</summary>
    private void AddTensorCoreGemms<TFormat, TNarrow, TWiden>(Accelerator accelerator, bool bf16)
        where TFormat : struct, IMmaFormat
        where TNarrow : struct, IElementConversion<float, ushort>
        where TWiden : struct, IElementConversion<ushort, float>
    {
        Add<MMajorA, KMajorB>(false, false);
        Add<MMajorA, NMajorB>(false, true);
        Add<KMajorA, KMajorB>(true, false);
        Add<KMajorA, NMajorB>(true, true);

        void Add<TOperandA, TOperandB>(bool transA, bool transB)
            where TOperandA : struct, IHalfGemmOperandA where TOperandB : struct, IHalfGemmOperandB
        {
            tensorCoreMatMul[(bf16, transA, transB, false)] =
                TensorCoreGemm<TFormat, TOperandA, TOperandB, F32GemmOutput>(accelerator, (c, _) => new F32GemmOutput { Values = c });
            tensorCoreMatMul[(bf16, transA, transB, true)] = TensorCoreGemm<TFormat, TOperandA, TOperandB, SixteenBitGemmOutput<TNarrow, TWiden>>(
                accelerator, (_, c) => new SixteenBitGemmOutput<TNarrow, TWiden> { Values = c });
        }
    }

    private static Lazy<TensorCoreMatMulKernel> TensorCoreGemm<TFormat, TOperandA, TOperandB, TOutput>(Accelerator accelerator,
        Func<ArrayView<float>, ArrayView<ushort>, TOutput> output)
        where TFormat : struct, IMmaFormat
        where TOperandA : struct, IHalfGemmOperandA
        where TOperandB : struct, IHalfGemmOperandB
        where TOutput : struct, IGemmOutput =>
        new(() =>
        {
            var kernel = accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, TOutput, ArrayView<float>, MatMulProblem, long, long>(
                HalfMatMulKernels.TensorCore<TFormat, TOperandA, TOperandB, TOutput>);
            return new TensorCoreMatMulKernel((config, a, b, c32, c16, bias, p) => kernel(config, a, b, output(c32, c16), bias, p,
                a.LoadEffectiveAddressAsPtr().ToInt64(), b.LoadEffectiveAddressAsPtr().ToInt64()));
        });

    private static Lazy<TensorCoreAttentionKernel> TensorCoreFlash<TFormat, TPacking, THead, TOutput>(Accelerator accelerator,
        Func<ArrayView<float>, ArrayView<ushort>, TOutput> output)
        where TFormat : struct, IMmaFormat where TPacking : struct, IPairPacking where THead : struct, IHeadSlices where TOutput : struct, IAttentionOutput =>
        new(() =>
        {
            var kernel = accelerator.LoadStreamKernel<ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, TOutput, ArrayView<float>, MaskViews, AttentionProblem>(
                TensorCoreAttentionKernels.FlashForward<TFormat, TPacking, THead, TOutput>);
            return new TensorCoreAttentionKernel((config, q, k, v, o32, o16, logSumExp, mask, p) => kernel(config, q, k, v, output(o32, o16), logSumExp, mask, p));
        });

    private static Lazy<FlashAttentionKernel> Flash<TAccumulator, TScore, TWeights>(Accelerator accelerator)
        where TAccumulator : struct, IRowAccumulator where TScore : struct, IAttentionScore where TWeights : struct, IScoreWeights =>
        new(() => new FlashAttentionKernel(accelerator.LoadStreamKernel<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, MaskViews, AttentionProblem, AttentionTiles>(AttentionKernels.FlashForward<TAccumulator, TScore, TWeights>)));
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Add => add.Value;
    public Action<Index1D, ArrayView<float>, ArrayView<float>, float, int> ScaleActivate => scaleActivate.Value;
    public Action<Index2D, ArrayView<int>, ArrayView<float>, ArrayView<float>, int, float> EmbeddingGather => embeddingGather.Value;
    public Action<Index2D, ArrayView<float>, ArrayView<float>, int, int, int> PositionalEncoding => positionalEncoding.Value;
    public Action<Index3D, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int> SplitHeads => splitHeads.Value;
    public Action<Index3D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int, int, int> GatherSplitHeads => gatherSplitHeads.Value;
    public Action<Index3D, ArrayView<float>, ArrayView<float>, int, int, int> MergeHeads => mergeHeads.Value;
    public Action<Index2D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int, int, int> MergeHeadsGather => mergeHeadsGather.Value;
    public Action<KernelConfig, ArrayView<int>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, float> EmbeddingLayerNorm => embeddingLayerNorm.Value;
    public Action<Index2D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> GatherRows => gatherRows.Value;
    public Action<Index1D, ArrayView<float>, ArrayView<ushort>> F32ToF16 => f32ToF16.Value;
    public Action<Index1D, ArrayView<float>, ArrayView<ushort>> F32ToBF16 => f32ToBF16.Value;
    public Action<Index1D, ArrayView<ushort>, ArrayView<float>> F16ToF32 => f16ToF32.Value;
    public Action<Index1D, ArrayView<ushort>, ArrayView<float>> BF16ToF32 => bf16ToF32.Value;
    public Action<Index1D, ArrayView<ushort>, ArrayView<ushort>> F16ToBF16 => f16ToBF16.Value;
    public Action<Index1D, ArrayView<ushort>, ArrayView<ushort>> BF16ToF16 => bf16ToF16.Value;
}

/// <summary>A loaded <see cref="AttentionKernels.FlashForward"/> specialisation: q, k, v, o, log-sum-exp, w, mask, problem, tiles.</summary>
internal sealed record FlashAttentionKernel(
    Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, MaskViews, AttentionProblem, AttentionTiles> Launch);

/// <summary>
/// A loaded <see cref="TensorCoreAttentionKernels.FlashForward"/> specialisation: q, k, v, the output as F32 or 16-bit (the
/// specialisation writes one), log-sum-exp, mask, problem.
/// </summary>
internal sealed record TensorCoreAttentionKernel(
    Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, MaskViews, AttentionProblem> Launch);

/// <summary>
/// A loaded <see cref="HalfMatMulKernels.TensorCore"/> specialisation: A, B, C as F32 or 16-bit (the specialisation writes
/// one), bias, problem.
/// </summary>
internal sealed record TensorCoreMatMulKernel(
    Action<KernelConfig, ArrayView<ushort>, ArrayView<ushort>, ArrayView<float>, ArrayView<ushort>, ArrayView<float>, MatMulProblem> Launch);
