namespace GpuAttention.Problems;

/// <summary>Activation applied by the fused epilogues (matmul) and the elementwise ops.</summary>
public enum Activation
{
    /// <summary>Identity.</summary>
    None = 0,
    /// <summary>max(0, x), NaN kept.</summary>
    Relu = 1,
    /// <summary>The exact (erf-based) GELU, as PyTorch's default <c>nn.GELU()</c>.</summary>
    Gelu = 2,
}
