using GpuAttention.Kernels;
using GpuAttention.Kernels.Cpu;
using GpuAttention.Runtime;
using ILGPU;
using ILGPU.Runtime;

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
        y.MarkWritten();
        if (a.Device.IsManaged)
        {
            unsafe
            {
                CpuElementwise.Add(a.Pointer, b.Pointer, y.Pointer, a.Length);
            }
            return;
        }
        a.Device.Kernels.Add(Elements(a), a.View, b.View, y.View);
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
        y.MarkWritten();
        if (x.Device.IsManaged)
        {
            unsafe
            {
                CpuElementwise.ScaleActivate(x.Pointer, y.Pointer, x.Length, alpha, (int)activation);
            }
            return;
        }
        x.Device.Kernels.ScaleActivate(Elements(x), x.View, y.View, alpha, (int)activation);
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
        var device = table.Device;
        output.MarkWritten();
        if (device.IsManaged)
        {
            unsafe
            {
                CpuElementwise.EmbeddingGather(tokens, table.Pointer, output.Pointer, width, scale);
            }
            return;
        }
        using var ids = device.Accelerator.Allocate1D(tokens.ToArray());
        device.Kernels.EmbeddingGather(new Index2D(width, tokens.Length), ids.View, table.View, output.View, width, scale);
        device.Synchronize();
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
        int rows = checked((int)(x.Length / width));
        y.MarkWritten();
        if (x.Device.IsManaged)
        {
            unsafe
            {
                CpuElementwise.AddSinusoidalPositions(x.Pointer, y.Pointer, rows, width, length, firstPosition);
            }
            return;
        }
        x.Device.Kernels.PositionalEncoding(new Index2D(width, rows), x.View, y.View, width, length, firstPosition);
    }

    private static Index1D Elements(DeviceTensor t) =>
        t.Length <= int.MaxValue ? new Index1D((int)t.Length)
        : throw new ArgumentException($"Tensor {DeviceTensor.ShapeText(t.Shape)} has more than {int.MaxValue} elements.");
}
