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
    /// <summary>
    /// GELU's tanh approximation, 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): PyTorch's <c>GELU(approximate='tanh')</c>,
    /// Hugging Face's <c>gelu_new</c> and <c>gelu_pytorch_tanh</c>.
    /// </summary>
    GeluTanh = 3,
}
