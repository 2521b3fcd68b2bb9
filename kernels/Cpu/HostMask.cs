namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// <see cref="MaskParams"/> for the managed kernels: the same window and valid-length rules (<see cref="MaskWindow"/>)
/// over host memory. A row's visible keys are one contiguous range, narrowed further by −∞ in the additive mask.
/// </summary>
public readonly unsafe struct HostMask
{
    /// <summary>Keys j &lt; i' − WindowLeft are hidden (<see cref="MaskParams.Unbounded"/> = no bound).</summary>
    public int WindowLeft { get; init; }

    /// <summary>Keys j &gt; i' + WindowRight are hidden (0 = causal).</summary>
    public int WindowRight { get; init; }

    /// <summary>Valid key length per batch row, or null when every key is valid.</summary>
    public int[]? ValidLengths { get; init; }

    /// <summary>Additive mask [mb, mh, Lq, Lk] (broadcast by zero strides), or null.</summary>
    public float* Additive { get; init; }

    /// <summary>Element stride between batch rows of <see cref="Additive"/>.</summary>
    public long AdditiveBatchStride { get; init; }

    /// <summary>Element stride between heads of <see cref="Additive"/>.</summary>
    public long AdditiveHeadStride { get; init; }

    /// <summary>The keys [Begin, End) query <paramref name="i"/> may see (empty when End ≤ Begin).</summary>
    public (int Begin, int End) VisibleKeys(int batch, int i, int lq, int lk) =>
        (MaskWindow.Begin(i, lq, lk, WindowLeft), MaskWindow.End(i, lq, lk, WindowRight, ValidLengths?[batch] ?? lk));

    /// <summary>The additive mask's row for query <paramref name="i"/>, or null without one.</summary>
    public float* AdditiveRow(int batch, int head, int i, int lk) =>
        Additive == null ? null : Additive + batch * AdditiveBatchStride + head * AdditiveHeadStride + (long)i * lk;
}
