namespace GpuAttention.Problems;

/// <summary>y = LayerNorm(x + residual)·gain + bias over rows of <see cref="Width"/>.</summary>
public struct LayerNormProblem
{
    /// <summary>Rows to normalise.</summary>
    public int Rows;
    /// <summary>Row width (the normalised axis).</summary>
    public int Width;
    /// <summary>Added to the variance.</summary>
    public float Epsilon;
    /// <summary>Non-zero: a residual of x's shape is added first.</summary>
    public int HasResidual;
}
