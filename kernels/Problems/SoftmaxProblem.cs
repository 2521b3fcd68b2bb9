namespace GpuAttention.Problems;

/// <summary>How the masked scores of a row are turned into weights.</summary>
public enum ScoreNormalizer
{
    /// <summary>softmax over the visible keys.</summary>
    Softmax = 0,
    /// <summary>ReLU(score) divided by the number of visible keys (the seed notes' ReLU normaliser).</summary>
    Relu = 1,
}

/// <summary>y = normalise(scale·x + mask) over rows of x viewed as [batch, heads, Lq, Lk].</summary>
public struct SoftmaxProblem
{
    /// <summary>Batch entries.</summary>
    public int Batch;
    /// <summary>Heads per batch entry.</summary>
    public int Heads;
    /// <summary>Query rows per head.</summary>
    public int Lq;
    /// <summary>Row length (keys).</summary>
    public int Lk;
    /// <summary>Multiplies x before the mask is added.</summary>
    public float Scale;
    /// <summary>A <see cref="ScoreNormalizer"/> value.</summary>
    public int Normalizer;

    /// <summary>Rows to normalise: batch·heads·Lq.</summary>
    public readonly long Rows => (long)Batch * Heads * Lq;
}
