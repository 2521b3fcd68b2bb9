using GpuAttention.Problems;
using ILGPU;

namespace GpuAttention.Kernels;

/// <summary>
/// The ILGPU kernels' view of a mask: the <see cref="MaskRules"/> plus the device memory they refer to. Softmax and the
/// fused attention share it, so both mask identically.
/// </summary>
public struct MaskViews
{
    /// <summary>The window, valid-length and additive rules.</summary>
    public MaskRules Rules;
    /// <summary>Valid key length per batch row, [batch] (read when <see cref="MaskRules.HasValidLengths"/> is set).</summary>
    public ArrayView<int> ValidLengths;
    /// <summary>The additive mask [mb, mh, Lq, Lk] (read when <see cref="MaskRules.HasAdditive"/> is set).</summary>
    public ArrayView<float> Additive;

    /// <summary>Keys of batch row <paramref name="batch"/> that are not padding.</summary>
    public readonly int ValidLength(int batch, int lk) => Rules.HasValidLengths != 0 ? ValidLengths[batch] : lk;

    /// <summary>The masked score: −∞ when key j is hidden from query i, else <paramref name="scaled"/> plus the additive mask.</summary>
    public readonly float Apply(float scaled, int batch, int head, int i, int j, int lq, int lk)
    {
        if (!Rules.InWindow(i, j, lq, lk) || j >= ValidLength(batch, lk))
            return float.NegativeInfinity;
        if (Rules.HasAdditive != 0)
            scaled += Additive[Rules.AdditiveRow(batch, head, i, lk) + j];
        return scaled;
    }

    /// <summary>First key any query at or after <paramref name="qBegin"/> may see.</summary>
    public readonly int FirstVisibleKey(int qBegin, int lq, int lk) => Rules.FirstKey(qBegin, lq, lk);

    /// <summary>One past the last key any query before <paramref name="qEnd"/> may see.</summary>
    public readonly int KeyEnd(int batch, int qEnd, int lq, int lk) => Rules.KeyEnd(qEnd - 1, lq, lk, ValidLength(batch, lk));
}
