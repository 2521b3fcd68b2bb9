using ILGPU;

namespace GpuAttention.Kernels;

/// <summary>
/// The attention mask as the kernels see it: a key j is visible to query i when it lies inside the
/// window around i' = i + Lk − Lq (so causal decoding with Lq &lt; Lk aligns the last query with the
/// last key), below the batch row's valid length, and the additive mask is not −∞ there.
/// Softmax and fused attention share it, so both paths mask identically.
/// </summary>
public struct MaskParams
{
    /// <summary>Stands for "no bound" in <see cref="WindowLeft"/> / <see cref="WindowRight"/>; far from int overflow.</summary>
    public const int Unbounded = 1 << 30;

    /// <summary>Keys j &lt; i' − WindowLeft are masked.</summary>
    public int WindowLeft;
    /// <summary>Keys j &gt; i' + WindowRight are masked (0 = causal).</summary>
    public int WindowRight;
    /// <summary>Non-zero when <see cref="ValidLengths"/> holds one valid key length per batch row.</summary>
    public int HasValidLengths;
    /// <summary>Valid key length per batch row, [batch].</summary>
    public ArrayView<int> ValidLengths;
    /// <summary>Non-zero when <see cref="Additive"/> is added to the scores.</summary>
    public int HasAdditive;
    /// <summary>Additive float mask [mb, mh, Lq, Lk], broadcast where mb or mh is 1.</summary>
    public ArrayView<float> Additive;
    /// <summary>Element stride between batch rows of <see cref="Additive"/> (0 when broadcast).</summary>
    public long AdditiveBatchStride;
    /// <summary>Element stride between heads of <see cref="Additive"/> (0 when broadcast).</summary>
    public long AdditiveHeadStride;

    /// <summary>True when key <paramref name="j"/> passes the window and valid-length tests for query <paramref name="i"/>.</summary>
    public readonly bool IsVisible(int batch, int i, int j, int lq, int lk)
    {
        int aligned = i + lk - lq;
        if (j < aligned - WindowLeft || j > aligned + WindowRight)
            return false;
        return HasValidLengths == 0 || j < ValidLengths[batch];
    }

    /// <summary>The masked score: −∞ when hidden, else <paramref name="scaled"/> plus the additive mask.</summary>
    public readonly float Apply(float scaled, int batch, int head, int i, int j, int lq, int lk)
    {
        if (!IsVisible(batch, i, j, lq, lk))
            return float.NegativeInfinity;
        if (HasAdditive != 0)
            scaled += Additive[batch * AdditiveBatchStride + head * AdditiveHeadStride + (long)i * lk + j];
        return scaled;
    }

    /// <summary>First key any query at or after <paramref name="qBegin"/> may see.</summary>
    public readonly int FirstVisibleKey(int qBegin, int lq, int lk) => MaskWindow.Begin(qBegin, lq, lk, WindowLeft);

    /// <summary>One past the last key any query before <paramref name="qEnd"/> may see.</summary>
    public readonly int KeyEnd(int batch, int qEnd, int lq, int lk) =>
        MaskWindow.End(qEnd - 1, lq, lk, WindowRight, HasValidLengths != 0 ? ValidLengths[batch] : lk);
}

/// <summary>The window and valid-length bounds as key ranges, shared by the ILGPU kernels and the managed ones.</summary>
public static class MaskWindow
{
    /// <summary>First key query <paramref name="i"/> (and any later one) may see: i' − left, at least 0.</summary>
    public static int Begin(int i, int lq, int lk, int left)
    {
        long first = (long)i + lk - lq - left;
        return first < 0 ? 0 : (int)first;
    }

    /// <summary>One past the last key query <paramref name="i"/> (and any earlier one) may see: min(i' + right + 1, Lk, valid length).</summary>
    public static int End(int i, int lq, int lk, int right, int validLength)
    {
        long end = (long)i + lk - lq + right + 1;
        int bound = end < lk ? (int)end : lk;
        return validLength < bound ? validLength : bound;
    }
}
