namespace GpuAttention.Problems;

/// <summary>
/// O = softmax(scale·Q·Kᵀ + mask)·V over [batch, heads, L, headDim] operands, with the first <see cref="Lk"/> of
/// <see cref="KeyCapacity"/> rows of K and V attended to (a key/value cache allocated for its longest sequence).
/// </summary>
public struct AttentionProblem
{
    /// <summary>Batch entries.</summary>
    public int Batch;
    /// <summary>Heads per batch entry.</summary>
    public int Heads;
    /// <summary>Query length.</summary>
    public int Lq;
    /// <summary>Keys attended to.</summary>
    public int Lk;
    /// <summary>Rows K and V hold per (batch, head), ≥ Lk.</summary>
    public int KeyCapacity;
    /// <summary>Head dimension d.</summary>
    public int HeadDim;
    /// <summary>Multiplies Q·Kᵀ (usually 1/√d).</summary>
    public float Scale;
    /// <summary>Non-zero: write the log-sum-exp of each query row's scores.</summary>
    public int WriteLogSumExp;

    /// <summary>(batch, head) pairs.</summary>
    public readonly int BatchHeads => Batch * Heads;

    /// <summary>Multiply-adds of the unmasked problem, Q·Kᵀ and P·V: 2·B·H·Lq·Lk·d.</summary>
    public readonly long MultiplyAdds => 2L * Batch * Heads * Lq * Lk * HeadDim;
}
