using ILGPU;
using ILGPU.Algorithms;

namespace GpuAttention.Kernels;

/// <summary>Small memory-bound kernels the model needs; all auto-grouped over one index per output element.</summary>
public static class ElementwiseKernels
{
    /// <summary>y[i] = a[i] + b[i].</summary>
    public static void Add(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> y) => y[i] = a[i] + b[i];

    /// <summary>y[i] = act(alpha·x[i]) for an <see cref="Activation"/> value.</summary>
    public static void ScaleActivate(Index1D i, ArrayView<float> x, ArrayView<float> y, float alpha, int activation) =>
        y[i] = ActivationMath.Apply(alpha * x[i], activation);

    /// <summary>
    /// out[t, c] = table[tokens[t], c]·scale: the token embedding (scale √d_model in the paper).
    /// Launch over Index2D(width, tokens); token ids are validated by the caller.
    /// </summary>
    public static void EmbeddingGather(Index2D index, ArrayView<int> tokens, ArrayView<float> table,
        ArrayView<float> output, int width, float scale)
    {
        int c = index.X, t = index.Y;
        output[(long)t * width + c] = table[(long)tokens[t] * width + c] * scale;
    }

    /// <summary>
    /// y[r, c] = x[r, c] + PE(position, c) with position = firstPosition + r mod length, where
    /// PE(pos, 2i) = sin(pos / 10000^(2i/width)) and PE(pos, 2i+1) = cos(…). Computed in double:
    /// a float angle loses ~1e-4 absolute at positions in the thousands.
    /// Launch over Index2D(width, rows) for x viewed as [rows, width], rows = batch·length.
    /// </summary>
    public static void AddSinusoidalPositions(Index2D index, ArrayView<float> x, ArrayView<float> y, int width,
        int length, int firstPosition)
    {
        int c = index.X, r = index.Y;
        int position = firstPosition + r % length;
        double frequency = XMath.Exp(-(c - c % 2) * XMath.Log(10000.0) / width);
        double angle = position * frequency;
        double pe = c % 2 == 0 ? XMath.Sin(angle) : XMath.Cos(angle);
        long at = (long)r * width + c;
        y[at] = (float)(x[at] + pe);
    }
}
