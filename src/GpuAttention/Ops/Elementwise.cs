using GpuAttention.Backends;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Ops;

/// <summary>Elementwise ops, the token embedding and the sinusoidal positional encoding.</summary>
public static class Elementwise
{
    /// <summary>y = a + b (all the same shape; y may alias either input).</summary>
    public static void Add(DeviceTensor a, DeviceTensor b, DeviceTensor y)
    {
        Check.Usable(a, nameof(a));
        Check.Usable(b, nameof(b), a.Device);
        Check.Usable(y, nameof(y), a.Device);
        Check.Shape(b, nameof(b), [.. a.Shape], "(the shape of 'a')");
        Check.Shape(y, nameof(y), [.. a.Shape], "(the shape of 'a')");
        Check.Implemented(a.Device, OpFamily.Elementwise, "Elementwise.Add", a, nameof(a));
        Check.Implemented(a.Device, OpFamily.Elementwise, "Elementwise.Add", b, nameof(b));
        Check.Implemented(a.Device, OpFamily.Elementwise, "Elementwise.Add", y, nameof(y));
        Check.GridLimit(a, nameof(a));
        y.MarkWritten();
        a.Device.Backend.Add(a, b, y);
    }

    /// <summary>
    /// y = x converted to y's dtype (same shape; any pair of F32, F16 and BF16). Narrowing rounds to nearest, ties to even;
    /// values beyond the target's range become ±∞; NaN stays NaN. y must not be x.
    /// </summary>
    public static void Convert(DeviceTensor x, DeviceTensor y)
    {
        Check.Usable(x, nameof(x));
        Check.Usable(y, nameof(y), x.Device);
        Check.Shape(y, nameof(y), [.. x.Shape], "(the shape of 'x')");
        Check.Distinct(y, nameof(y), x, nameof(x));
        Check.GridLimit(x, nameof(x));
        y.MarkWritten();
        x.Device.Backend.Convert(x, y);
    }

    /// <summary>y = alpha·x.</summary>
    public static void Scale(DeviceTensor x, float alpha, DeviceTensor y) => ScaleActivate(x, alpha, Activation.None, y);

    /// <summary>y = max(0, x).</summary>
    public static void Relu(DeviceTensor x, DeviceTensor y) => ScaleActivate(x, 1f, Activation.Relu, y);

    /// <summary>y = GELU(x) (erf form).</summary>
    public static void Gelu(DeviceTensor x, DeviceTensor y) => ScaleActivate(x, 1f, Activation.Gelu, y);

    /// <summary>y = act(alpha·x) (same shape; y may be x).</summary>
    public static void ScaleActivate(DeviceTensor x, float alpha, Activation activation, DeviceTensor y)
    {
        Check.Usable(x, nameof(x));
        Check.Usable(y, nameof(y), x.Device);
        Check.Shape(y, nameof(y), [.. x.Shape], "(the shape of 'x')");
        Check.Finite(alpha, nameof(alpha));
        if (!Enum.IsDefined(activation))
            throw new ArgumentOutOfRangeException(nameof(activation), activation, "Unknown activation.");
        Check.Implemented(x.Device, OpFamily.Elementwise, "Elementwise.ScaleActivate", x, nameof(x));
        Check.Implemented(x.Device, OpFamily.Elementwise, "Elementwise.ScaleActivate", y, nameof(y));
        Check.GridLimit(x, nameof(x));
        y.MarkWritten();
        x.Device.Backend.ScaleActivate(x, alpha, activation, y);
    }

    /// <summary>
    /// output[t, :] = table[tokens[t], :]·scale for a table of [vocab, d]; <paramref name="output"/> is
    /// [tokens, d] or [batch, length, d] with batch·length = tokens. The paper scales by √d.
    /// </summary>
    public static void EmbeddingGather(ReadOnlySpan<int> tokens, DeviceTensor table, DeviceTensor output, float scale = 1f)
    {
        Check.Usable(table, nameof(table));
        Check.Usable(output, nameof(output), table.Device);
        Check.Rank(table, nameof(table), "([vocab, d])", 2);
        Check.Finite(scale, nameof(scale));
        int vocab = table.Shape[0], width = table.Shape[1];
        if (tokens.IsEmpty)
            throw new ArgumentException("Argument 'tokens' must hold at least one token.", nameof(tokens));
        if (output.Shape[^1] != width || output.Length != (long)tokens.Length * width)
            throw new ArgumentException(
                $"Argument 'output' must have shape [{tokens.Length}, {width}] (tokens, d) or [batch, length, {width}] with batch·length = {tokens.Length}, " +
                $"but has {DeviceTensor.ShapeText(output.Shape)}.", nameof(output));
        for (int t = 0; t < tokens.Length; t++)
        {
            if ((uint)tokens[t] >= (uint)vocab)
                throw new ArgumentOutOfRangeException(nameof(tokens), tokens[t], $"Token {t} is {tokens[t]}, outside the vocabulary 0..{vocab - 1}.");
        }
        Check.Implemented(table.Device, OpFamily.Embedding, "Elementwise.EmbeddingGather", table, nameof(table));
        Check.Implemented(table.Device, OpFamily.Embedding, "Elementwise.EmbeddingGather", output, nameof(output));
        output.MarkWritten();
        table.Device.Backend.EmbeddingGather(tokens, table, output, scale);
    }

    /// <summary>
    /// y = x + PE for x of [length, d] or [batch, length, d]: row l gets the sinusoidal encoding of position
    /// <paramref name="firstPosition"/> + l (a decoding step passes its position in the sequence).
    /// </summary>
    public static void AddPositionalEncoding(DeviceTensor x, DeviceTensor y, int firstPosition = 0)
    {
        Check.Usable(x, nameof(x));
        Check.Usable(y, nameof(y), x.Device);
        Check.Rank(x, nameof(x), "([length, d] or [batch, length, d])", 2, 3);
        Check.Shape(y, nameof(y), [.. x.Shape], "(the shape of 'x')");
        ArgumentOutOfRangeException.ThrowIfNegative(firstPosition);
        int width = x.Shape[^1], length = x.Shape[^2];
        if ((long)firstPosition + length - 1 > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(firstPosition), firstPosition,
                $"Argument 'firstPosition' plus the {length} rows of 'x' must stay within int positions: at most {int.MaxValue - length + 1}.");
        int rows = checked((int)(x.Length / width));
        Check.Implemented(x.Device, OpFamily.Embedding, "Elementwise.AddPositionalEncoding", x, nameof(x));
        Check.Implemented(x.Device, OpFamily.Embedding, "Elementwise.AddPositionalEncoding", y, nameof(y));
        y.MarkWritten();
        x.Device.Backend.AddPositionalEncoding(x, y, rows, width, length, firstPosition);
    }
}
