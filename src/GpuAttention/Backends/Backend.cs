using GpuAttention.Backends.Ilgpu;
using GpuAttention.Ops;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Backends;

/// <summary>The op families a backend may or may not implement for a dtype.</summary>
internal enum OpFamily
{
    MatMul,
    Softmax,
    Attention,
    LayerNorm,
    Elementwise,
    HeadLayout,
    Embedding,
}

/// <summary>
/// What runs the ops of a <see cref="ComputeDevice"/>: one implementation per backend (the managed CPU code in
/// <c>Managed/</c>; ILGPU, serving CUDA, OpenCL and the CPU accelerator, in <c>Ilgpu/</c>), each op family in a file of its
/// own with the same name in both folders. The ops validate their operands, describe the problem (<c>GpuAttention.Problems</c>)
/// and call here; everything a backend needs beyond the problem — launch shapes and compiled kernels, packed weights,
/// scratch memory and threads — stays inside it. A backend also keeps its device's memory accounting.
/// </summary>
internal abstract class Backend : IDisposable
{
    private long bytesAllocated;
    private long peakBytesAllocated;

    /// <summary>The backend's kind.</summary>
    public abstract DeviceKind Kind { get; }

    /// <summary>The hardware's name as its driver reports it, or the managed backend's instruction set and threads.</summary>
    public abstract string Name { get; }

    /// <summary>True when the hardware is a CPU (the managed backend, the CPU accelerator, an OpenCL CPU driver).</summary>
    public abstract bool IsCpuHardware { get; }

    /// <summary>Launch shapes of an ILGPU backend; null for the managed one.</summary>
    public virtual LaunchProfile? Profile => null;

    /// <summary>The matmul algorithms this backend offers besides <see cref="MatMulAlgorithm.Auto"/>.</summary>
    public virtual IReadOnlyList<MatMulAlgorithm> MatMulAlgorithms => [];

    /// <summary>Bytes held by live tensors and by scratch memory in use.</summary>
    public long BytesAllocated => Volatile.Read(ref bytesAllocated);

    /// <summary>The most bytes held at once since creation or the last <see cref="ResetPeak"/>.</summary>
    public long PeakBytesAllocated => Volatile.Read(ref peakBytesAllocated);

    /// <summary>
    /// Counts <paramref name="bytes"/> (negative: frees) towards <see cref="BytesAllocated"/> and the peak. Called for
    /// every scratch buffer a kernel task takes and gives back, so the common case is one locked add: the peak is read
    /// plainly (64-bit reads are atomic on the platforms .NET runs on) and compare-exchanged only when it grows.
    /// </summary>
    public void Track(long bytes)
    {
        long now = Interlocked.Add(ref bytesAllocated, bytes);
        if (bytes <= 0)
            return;
        long peak;
        while (now > (peak = Volatile.Read(ref peakBytesAllocated)))
        {
            if (Interlocked.CompareExchange(ref peakBytesAllocated, now, peak) == peak)
                break;
        }
    }

    /// <summary>Restarts the peak from the bytes held now.</summary>
    public void ResetPeak() => Interlocked.Exchange(ref peakBytesAllocated, BytesAllocated);

    /// <summary>
    /// True when the backend implements <paramref name="family"/> for <paramref name="dtype"/>: F32 everywhere, and 16-bit
    /// matmul and attention operands everywhere (<see cref="MatMulSixteenBit"/>, <see cref="AttentionSixteenBit"/>).
    /// </summary>
    public virtual bool Implements(OpFamily family, DType dtype) => dtype == DType.F32 || family is OpFamily.MatMul or OpFamily.Attention;

    /// <summary>Allocates uninitialised storage for <paramref name="length"/> elements of <paramref name="dtype"/>.</summary>
    /// <exception cref="InsufficientMemoryException">The device has no room for it.</exception>
    public abstract TensorStorage Allocate(DType dtype, long length);

    /// <summary>Waits for every launched kernel (the managed backend's ops finish before they return).</summary>
    public abstract void Synchronize();

    /// <summary>y = x converted to y's dtype (same length; any pair of dtypes).</summary>
    public abstract void Convert(DeviceTensor x, DeviceTensor y);

    public abstract void MatMul(MatMulProblem p, DeviceTensor a, DeviceTensor b, DeviceTensor c, DeviceTensor? bias, MatMulAlgorithm algorithm);

    /// <summary>
    /// The matmul with A and B in one 16-bit dtype, fp32 accumulation, bias F32, C F32 or that dtype. By default A and B are
    /// widened (exactly) into F32 scratch tensors and multiplied by <see cref="MatMul"/>, into C or, for a 16-bit C, into F32
    /// scratch (holding C's values when β reads them) rounded into C at the end; a backend with a 16-bit kernel overrides it.
    /// </summary>
    public virtual void MatMulSixteenBit(MatMulProblem p, DeviceTensor a, DeviceTensor b, DeviceTensor c, DeviceTensor? bias)
    {
        using var wideA = a.Device.Allocate(DType.F32, [.. a.Shape]);
        using var wideB = b.Device.Allocate(DType.F32, [.. b.Shape]);
        Convert(a, wideA);
        Convert(b, wideB);
        if (c.DType == DType.F32)
        {
            MatMul(p, wideA, wideB, c, bias, MatMulAlgorithm.Auto);
            return;
        }
        using var wideC = c.Device.Allocate(DType.F32, [.. c.Shape]);
        if (p.Beta != 0f)
            Convert(c, wideC);
        MatMul(p, wideA, wideB, wideC, bias, MatMulAlgorithm.Auto);
        Convert(wideC, c);
    }

    public abstract void Softmax(SoftmaxProblem p, DeviceTensor x, DeviceTensor y, ResolvedMask mask);

    public abstract void Attention(AttentionProblem p, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor output,
        DeviceTensor? logSumExp, ResolvedMask mask);

    /// <summary>
    /// <see cref="Attention"/> with Q, K and V in one 16-bit dtype, the output F32 or that dtype, the log-sum-exp F32. By
    /// default Q, K and V are widened (exactly) into F32 scratch tensors for the fp32 kernel, whose output is rounded into a
    /// 16-bit <paramref name="output"/>; a backend with a 16-bit kernel overrides it.
    /// </summary>
    public virtual void AttentionSixteenBit(AttentionProblem p, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor output,
        DeviceTensor? logSumExp, ResolvedMask mask)
    {
        using var wideQ = Widened(q);
        using var wideK = Widened(k);
        using var wideV = Widened(v);
        if (output.DType == DType.F32)
        {
            Attention(p, wideQ, wideK, wideV, output, logSumExp, mask);
            return;
        }
        using var wideOutput = output.Device.Allocate(DType.F32, [.. output.Shape]);
        Attention(p, wideQ, wideK, wideV, wideOutput, logSumExp, mask);
        Convert(wideOutput, output);
    }

    private DeviceTensor Widened(DeviceTensor x)
    {
        var wide = x.Device.Allocate(DType.F32, [.. x.Shape]);
        Convert(x, wide);
        return wide;
    }

    /// <summary>
    /// The fused additive attention over projected queries and keys (q' [batch, heads, Lq, width], k' [.., Lk, width]),
    /// w [width] and V [.., Lk, ValueDim]: no Lq×Lk buffer.
    /// </summary>
    public abstract void AdditiveAttention(AttentionProblem p, DeviceTensor projectedQ, DeviceTensor projectedK, DeviceTensor v,
        DeviceTensor scoreVector, DeviceTensor output, DeviceTensor? logSumExp, ResolvedMask mask);

    /// <summary>The unfused baseline's additive scores S [batch·heads·Lq, Lk] (unmasked, unnormalised).</summary>
    public abstract void AdditiveScores(AttentionProblem p, DeviceTensor projectedQ, DeviceTensor projectedK, DeviceTensor scoreVector,
        DeviceTensor scores);

    public abstract void LayerNorm(LayerNormProblem p, DeviceTensor x, DeviceTensor? residual, DeviceTensor gain, DeviceTensor bias,
        DeviceTensor y);

    /// <summary>y = x / max(‖x‖₂, ε) over rows of <paramref name="width"/>.</summary>
    public abstract void L2Normalize(DeviceTensor x, DeviceTensor y, int rows, int width, float epsilon);

    /// <summary>
    /// y row r = LayerNorm(words[ids[r]] + types[ids[2·rows + r]] + positions[ids[rows + r]])·gain + bias over rows of
    /// <paramref name="width"/> (ids validated).
    /// </summary>
    public abstract void EmbeddingLayerNorm(ReadOnlySpan<int> ids, DeviceTensor words, DeviceTensor positions, DeviceTensor types,
        DeviceTensor gain, DeviceTensor bias, DeviceTensor y, int width, float epsilon);

    /// <summary>y = a + b elementwise.</summary>
    public abstract void Add(DeviceTensor a, DeviceTensor b, DeviceTensor y);

    /// <summary>y = act(alpha·x) elementwise.</summary>
    public abstract void ScaleActivate(DeviceTensor x, float alpha, Activation activation, DeviceTensor y);

    /// <summary>output[t, :] = table[tokens[t], :]·scale (token ids validated).</summary>
    public abstract void EmbeddingGather(ReadOnlySpan<int> tokens, DeviceTensor table, DeviceTensor output, float scale);

    /// <summary>y = x + PE over rows of <paramref name="width"/>, row r at position firstPosition + r mod length.</summary>
    public abstract void AddPositionalEncoding(DeviceTensor x, DeviceTensor y, int rows, int width, int length, int firstPosition);

    /// <summary>Features firstFeature … of x [batch, length, width] → y [batch, heads, capacity, d] at rows firstRow ….</summary>
    public abstract void SplitHeads(DeviceTensor x, DeviceTensor y, int batch, int length, int heads, int headDim, int capacity, int firstRow,
        int width, int firstFeature);

    /// <summary>y [batch, heads, length, d] ← features firstFeature … of the rows of x (of <paramref name="width"/>) that rows[b·length + t] name (validated).</summary>
    public abstract void GatherSplitHeads(DeviceTensor x, ReadOnlySpan<int> rows, DeviceTensor y, int batch, int length, int heads, int headDim,
        int width, int firstFeature);

    /// <summary>x [batch, heads, length, d] → y [batch, length, heads·d].</summary>
    public abstract void MergeHeads(DeviceTensor x, DeviceTensor y, int batch, int length, int heads, int headDim);

    /// <summary>Row i of y [.., heads·d] ← the heads of x [batch, heads, length, d] at row rows[i] = b·length + t (validated).</summary>
    public abstract void MergeHeadsGather(DeviceTensor x, ReadOnlySpan<int> rows, DeviceTensor y, int length, int heads, int headDim);

    /// <summary>y[i, :] = x[sources[i], :] over rows of <paramref name="rowLength"/> elements (sources validated).</summary>
    public abstract void GatherRows(DeviceTensor x, ReadOnlySpan<int> sources, DeviceTensor y, long rowLength);

    /// <inheritdoc />
    public abstract void Dispose();
}
