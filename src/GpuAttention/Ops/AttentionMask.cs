using GpuAttention.Backends;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Ops;

/// <summary>
/// Which keys each query may see, shared by <see cref="Softmax"/> and <see cref="Attention"/>. Parts combine
/// with <see cref="And"/>: a key is visible when every part allows it. Query i is aligned with key
/// i' = i + Lk − Lq, so with a key/value cache (Lq &lt; Lk) the last query sees every key under a causal mask.
/// </summary>
public sealed record AttentionMask
{
    /// <summary>Every key visible.</summary>
    public static AttentionMask None { get; } = new();

    /// <summary>Query i sees keys j ≤ i'.</summary>
    public static AttentionMask Causal { get; } = new() { WindowRight = 0 };

    /// <summary>Keys below i' − <see cref="WindowLeft"/> are hidden; null = no bound.</summary>
    public int? WindowLeft { get; private init; }

    /// <summary>Keys above i' + <see cref="WindowRight"/> are hidden; null = no bound, 0 = causal.</summary>
    public int? WindowRight { get; private init; }

    /// <summary>Valid key length per batch row (keys at or past it are padding); null = all valid.</summary>
    public IReadOnlyList<int>? ValidLengths { get; private init; }

    /// <summary>Float mask added to the scaled scores ([Lq, Lk] or [batch or 1, heads or 1, Lq, Lk]); −∞ hides a key.</summary>
    public DeviceTensor? Additive { get; private init; }

    /// <summary>
    /// The seed notes' truncated (local) self-attention: query i sees keys i' − <paramref name="left"/> … i' + <paramref name="right"/>.
    /// <c>SlidingWindow(w − 1, 0)</c> is a causal window of w keys.
    /// </summary>
    public static AttentionMask SlidingWindow(int left, int right)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(left);
        ArgumentOutOfRangeException.ThrowIfNegative(right);
        return new AttentionMask { WindowLeft = left, WindowRight = right };
    }

    /// <summary>Key padding: batch row b has <paramref name="validLengths"/>[b] real keys (0 … Lk).</summary>
    public static AttentionMask KeyPadding(params int[] validLengths)
    {
        ArgumentNullException.ThrowIfNull(validLengths);
        return new AttentionMask { ValidLengths = (int[])validLengths.Clone() };
    }

    /// <summary>An additive float mask, broadcast over batch and heads where its shape says 1.</summary>
    public static AttentionMask AdditiveMask(DeviceTensor mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        return new AttentionMask { Additive = mask };
    }

    /// <summary>The intersection of two masks (at most one key-padding and one additive part).</summary>
    public AttentionMask And(AttentionMask other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (ValidLengths is not null && other.ValidLengths is not null)
            throw new ArgumentException("Both masks carry key-padding lengths; combine them into one.", nameof(other));
        if (Additive is not null && other.Additive is not null)
            throw new ArgumentException("Both masks carry an additive mask; add them into one.", nameof(other));
        return new AttentionMask
        {
            WindowLeft = Tighter(WindowLeft, other.WindowLeft),
            WindowRight = Tighter(WindowRight, other.WindowRight),
            ValidLengths = ValidLengths ?? other.ValidLengths,
            Additive = Additive ?? other.Additive,
        };
    }

    /// <summary>Validates the mask against a [batch, heads, Lq, Lk] problem on <paramref name="device"/>.</summary>
    internal ResolvedMask Resolve(ComputeDevice device, int batch, int heads, int lq, int lk, string argument)
    {
        var rules = new MaskRules
        {
            WindowLeft = WindowLeft ?? MaskRules.Unbounded,
            WindowRight = WindowRight ?? MaskRules.Unbounded,
        };
        if (Additive is { } additive)
        {
            Check.Usable(additive, argument + ".Additive", device);
            Check.Implemented(device, OpFamily.Softmax, "AttentionMask.AdditiveMask", additive, argument + ".Additive");
            bool rank2 = additive.Rank == 2 && additive.Shape[0] == lq && additive.Shape[1] == lk;
            bool rank4 = additive.Rank == 4 && (additive.Shape[0] == 1 || additive.Shape[0] == batch)
                && (additive.Shape[1] == 1 || additive.Shape[1] == heads) && additive.Shape[2] == lq && additive.Shape[3] == lk;
            if (!rank2 && !rank4)
                throw new ArgumentException(
                    $"Argument '{argument}.Additive' must have shape [{lq}, {lk}] or [{batch} or 1, {heads} or 1, {lq}, {lk}], " +
                    $"but has {DeviceTensor.ShapeText(additive.Shape)}.", argument);
            rules.HasAdditive = 1;
            rules.AdditiveBatchStride = rank4 && additive.Shape[0] == batch && batch > 1 ? (long)additive.Shape[1] * lq * lk : 0;
            rules.AdditiveHeadStride = rank4 && additive.Shape[1] == heads && heads > 1 ? (long)lq * lk : 0;
        }
        if (ValidLengths is not { } lengths)
            return new ResolvedMask(rules, null, Additive);
        if (lengths.Count != batch)
            throw new ArgumentException(
                $"Argument '{argument}.ValidLengths' must have shape [{batch}] (one length per batch row), but has [{lengths.Count}].", argument);
        for (int b = 0; b < lengths.Count; b++)
        {
            if (lengths[b] < 0 || lengths[b] > lk)
                throw new ArgumentException(
                    $"Argument '{argument}.ValidLengths[{b}]' must be in 0..{lk} (Lk), but is {lengths[b]}.", argument);
        }
        rules.HasValidLengths = 1;
        return new ResolvedMask(rules, lengths.ToArray(), Additive);
    }

    private static int? Tighter(int? x, int? y) => x is null ? y : y is null ? x : Math.Min(x.Value, y.Value);
}

/// <summary>
/// A mask validated against one problem: the <see cref="MaskRules"/> every backend reads, and the data they refer to
/// (valid lengths per batch row, the additive tensor), which each backend turns into its own view.
/// </summary>
internal sealed record ResolvedMask(MaskRules Rules, int[]? ValidLengths, DeviceTensor? Additive);
