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
    public readonly int FirstVisibleKey(int qBegin, int lq, int lk)
    {
        int first = qBegin + lk - lq - WindowLeft;
        return first < 0 ? 0 : first;
    }

    /// <summary>One past the last key any query before <paramref name="qEnd"/> may see.</summary>
    public readonly int KeyEnd(int batch, int qEnd, int lq, int lk)
    {
        long end = (long)qEnd - 1 + lk - lq + WindowRight + 1;
        int bound = end < lk ? (int)end : lk;
        if (HasValidLengths != 0 && ValidLengths[batch] < bound)
            bound = ValidLengths[batch];
        return bound;
    }
}
