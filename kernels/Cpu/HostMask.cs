using GpuAttention.Problems;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// The managed kernels' view of a mask: the <see cref="MaskRules"/> plus the host memory they refer to. A row's visible
/// keys are one contiguous range, narrowed further by −∞ in the additive mask.
/// </summary>
public readonly unsafe struct HostMask
{
    /// <summary>The window, valid-length and additive rules.</summary>
    public MaskRules Rules { get; init; }

    /// <summary>Valid key length per batch row, or null when every key is valid.</summary>
    public int[]? ValidLengths { get; init; }

    /// <summary>Additive mask [mb, mh, Lq, Lk] (broadcast by zero strides), or null.</summary>
    public float* Additive { get; init; }

    /// <summary>Keys of batch row <paramref name="batch"/> that are not padding.</summary>
    public int ValidLength(int batch, int lk) => ValidLengths?[batch] ?? lk;

    /// <summary>The keys [Begin, End) query <paramref name="i"/> may see (empty when End ≤ Begin).</summary>
    public (int Begin, int End) VisibleKeys(int batch, int i, int lq, int lk) =>
        (Rules.FirstKey(i, lq, lk), Rules.KeyEnd(i, lq, lk, ValidLength(batch, lk)));

    /// <summary>The additive mask's row for query <paramref name="i"/>, or null without one.</summary>
    public float* AdditiveRow(int batch, int head, int i, int lk) =>
        Additive == null ? null : Additive + Rules.AdditiveRow(batch, head, i, lk);
}
