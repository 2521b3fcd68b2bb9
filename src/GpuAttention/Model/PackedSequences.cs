namespace GpuAttention.Model;

/// <summary>
/// The real tokens of a padded batch as one packed sequence (FlashAttention's "varlen" layout): sequence b's tokens are
/// packed rows <see cref="Offsets"/>[b] … Offsets[b] + Lengths[b] − 1, so products and norms run on
/// <see cref="Total"/> rows and padding costs them nothing. Attention goes back to the padded layout
/// ([batch, heads, <see cref="PaddedLength"/>, d]) with a key-padding mask, through <see cref="PaddedSources"/> and
/// <see cref="PackedSources"/> (row maps for <see cref="Ops.HeadLayout.GatherRows"/>).
/// </summary>
public sealed class PackedSequences
{
    /// <summary>Packs sequences of <paramref name="lengths"/> tokens (each ≥ 1).</summary>
    public PackedSequences(IReadOnlyList<int> lengths)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        if (lengths.Count == 0 || lengths.Any(l => l < 1))
            throw new ArgumentException("Argument 'lengths' must hold at least one length, each at least 1.", nameof(lengths));
        Lengths = [.. lengths];
        PaddedLength = Lengths.Max();
        Offsets = new int[Lengths.Length];
        long total = 0;
        for (int b = 0; b < Lengths.Length; b++)
        {
            Offsets[b] = checked((int)total);
            total += Lengths[b];
        }
        Total = checked((int)total);
        PackedSources = new int[Total];
        PaddedSources = new int[checked(Lengths.Length * PaddedLength)];
        for (int b = 0; b < Lengths.Length; b++)
        for (int t = 0; t < PaddedLength; t++)
        {
            // A padding row copies its sequence's first token: any finite row will do, the mask hides it as a key and its
            // own output is dropped on the way back.
            PaddedSources[b * PaddedLength + t] = Offsets[b] + (t < Lengths[b] ? t : 0);
            if (t < Lengths[b])
                PackedSources[Offsets[b] + t] = b * PaddedLength + t;
        }
    }

    /// <summary>Tokens per sequence.</summary>
    public int[] Lengths { get; }

    /// <summary>Sequences.</summary>
    public int Batch => Lengths.Length;

    /// <summary>The longest sequence: the padded layout's length.</summary>
    public int PaddedLength { get; }

    /// <summary>Packed rows: the sum of the lengths.</summary>
    public int Total { get; }

    /// <summary>First packed row of each sequence.</summary>
    public int[] Offsets { get; }

    /// <summary>For each padded row (b·PaddedLength + t), the packed row it comes from.</summary>
    public int[] PaddedSources { get; }

    /// <summary>For each packed row, the padded row it comes from.</summary>
    public int[] PackedSources { get; }
}
