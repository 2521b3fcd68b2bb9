namespace GpuAttention.Reference;

/// <summary>
/// The mask semantics README.md states, spelled out in the plainest way: query i lines up with key
/// i + Lk − Lq; a window keeps keys within [aligned − left, aligned + right]; key padding keeps
/// keys below the batch row's length; the additive mask is added to the scaled score.
/// </summary>
public sealed record ReferenceMask
{
    public int? Left { get; init; }
    public int? Right { get; init; }
    public int[]? ValidLengths { get; init; }
    /// <summary>Additive values, with its shape [mb, mh, Lq, Lk] (mb, mh ∈ {1, batch/heads}).</summary>
    public float[]? Additive { get; init; }
    public int[]? AdditiveShape { get; init; }

    public bool Visible(int b, int i, int j, int lq, int lk)
    {
        int aligned = i + (lk - lq);
        if (Left is int left && j < aligned - left) return false;
        if (Right is int right && j > aligned + right) return false;
        if (ValidLengths is not null && j >= ValidLengths[b]) return false;
        return true;
    }

    public double AdditiveAt(int b, int h, int i, int j)
    {
        if (Additive is null) return 0.0;
        var s = AdditiveShape!;
        int mb = s.Length == 4 ? s[0] : 1, mh = s.Length == 4 ? s[1] : 1;
        int lq = s[^2], lk = s[^1];
        int bb = mb == 1 ? 0 : b, hh = mh == 1 ? 0 : h;
        return Additive[((bb * mh + hh) * lq + i) * lk + j];
    }
}
