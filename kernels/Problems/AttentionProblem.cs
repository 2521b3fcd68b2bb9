namespace GpuAttention.Problems;

/// <summary>
/// O = normalise(score(Q, K) + mask)·V over [batch, heads, L, width] operands, with the first <see cref="Lk"/> of
/// <see cref="KeyCapacity"/> rows of K and V attended to (a key/value cache allocated for its longest sequence). The score
/// is scale·Q·Kᵀ, or for additive attention Σₐ wₐ·tanh(q'ₐ + k'ₐ) over projected rows (the scale is then 1).
/// </summary>
public struct AttentionProblem
{
    /// <summary>Batch entries.</summary>
    public int Batch;
    /// <summary>Heads per batch entry.</summary>
    public int Heads;
    /// <summary>
    /// Heads of K and V per batch entry (a divisor of <see cref="Heads"/>): fewer than the query heads is grouped-query
    /// attention, query head h reading key/value head h / (Heads / KeyHeads); one is multi-query attention.
    /// </summary>
    public int KeyHeads;
    /// <summary>Query length.</summary>
    public int Lq;
    /// <summary>Keys attended to.</summary>
    public int Lk;
    /// <summary>Rows K and V hold per (batch, head), ≥ Lk.</summary>
    public int KeyCapacity;
    /// <summary>Width of the Q and K rows the score reads: the head dimension d, or the additive form's projected width.</summary>
    public int HeadDim;
    /// <summary>Width of the V and O rows (the head dimension for dot-product attention).</summary>
    public int ValueDim;
    /// <summary>Multiplies Q·Kᵀ (usually 1/√d).</summary>
    public float Scale;
    /// <summary>Non-zero: write the log-sum-exp of each query row's scores (softmax only).</summary>
    public int WriteLogSumExp;
    /// <summary>A <see cref="ScoreNormalizer"/> value.</summary>
    public int Normalizer;

    /// <summary>(batch, head) pairs.</summary>
    public readonly int BatchHeads => Batch * Heads;

    /// <summary>The (batch, key/value head) pair that query pair <paramref name="headIndex"/> = batch·Heads + head reads.</summary>
    public readonly int KeyHeadIndex(int headIndex) => headIndex / Heads * KeyHeads + headIndex % Heads / (Heads / KeyHeads);

    /// <summary>Multiply-adds of the unmasked problem, Q·Kᵀ and P·V: B·H·Lq·Lk·(d + d_v).</summary>
    public readonly long MultiplyAdds => (long)Batch * Heads * Lq * Lk * (HeadDim + ValueDim);
}
