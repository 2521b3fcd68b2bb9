namespace GpuAttention.Problems;

/// <summary>
/// Which keys each query may see, as every backend reads it: key j is visible to query i when it lies inside the window
/// around the aligned key i' = i + Lk − Lq (so causal decoding with Lq &lt; Lk lines the last query up with the last key),
/// below its batch row's valid length, and the additive mask is not −∞ there. The rules are here once; each backend
/// pairs them with its own view of the valid lengths and the additive values (<c>MaskViews</c> for the ILGPU kernels,
/// <c>HostMask</c> for the managed ones). Arithmetic on positions is in 64 bits, so no window, however wide, overflows.
/// </summary>
public struct MaskRules
{
    /// <summary>A window side with no bound.</summary>
    public const int Unbounded = int.MaxValue;

    /// <summary>Keys j &lt; i' − WindowLeft are hidden.</summary>
    public int WindowLeft;
    /// <summary>Keys j &gt; i' + WindowRight are hidden (0 = causal).</summary>
    public int WindowRight;
    /// <summary>Non-zero when each batch row has a valid key length (keys at or past it are padding).</summary>
    public int HasValidLengths;
    /// <summary>Non-zero when an additive float mask [mb, mh, Lq, Lk] is added to the scaled scores.</summary>
    public int HasAdditive;
    /// <summary>Element stride between batch rows of the additive mask (0 when broadcast over the batch).</summary>
    public long AdditiveBatchStride;
    /// <summary>Element stride between heads of the additive mask (0 when broadcast over heads).</summary>
    public long AdditiveHeadStride;

    /// <summary>Every key visible.</summary>
    public static MaskRules None => new() { WindowLeft = Unbounded, WindowRight = Unbounded };

    /// <summary>True when key <paramref name="j"/> lies inside query <paramref name="i"/>'s window.</summary>
    public readonly bool InWindow(int i, int j, int lq, int lk)
    {
        long aligned = (long)i + lk - lq;
        return j >= aligned - WindowLeft && j <= aligned + WindowRight;
    }

    /// <summary>First key query <paramref name="i"/> (and every later query) may see: max(0, i' − left).</summary>
    public readonly int FirstKey(int i, int lq, int lk)
    {
        long first = (long)i + lk - lq - WindowLeft;
        return first < 0 ? 0 : (int)first;
    }

    /// <summary>
    /// One past the last key query <paramref name="i"/> (and every earlier query) may see: min(i' + right + 1, Lk,
    /// <paramref name="validLength"/>); at most <paramref name="lk"/>, and at or below <see cref="FirstKey"/> when none.
    /// </summary>
    public readonly int KeyEnd(int i, int lq, int lk, int validLength)
    {
        long end = (long)i + lk - lq + WindowRight + 1;
        int bound = end < lk ? (int)(end < 0 ? 0 : end) : lk;
        return validLength < bound ? validLength : bound;
    }

    /// <summary>Element offset of the additive mask's row for query <paramref name="i"/> of (batch, head).</summary>
    public readonly long AdditiveRow(int batch, int head, int i, int lk) =>
        batch * AdditiveBatchStride + head * AdditiveHeadStride + (long)i * lk;
}
