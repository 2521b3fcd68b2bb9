using GpuAttention.Backends;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Ops;

/// <summary>Layer normalisation over the last axis, optionally fused with a residual add.</summary>
public static class LayerNorm
{
    /// <summary>
    /// y = LayerNorm(x + residual)·gain + bias over the last axis (width W) of <paramref name="x"/>;
    /// <paramref name="gain"/> and <paramref name="bias"/> are [W], <paramref name="y"/> and
    /// <paramref name="residual"/> have x's shape. y may be x itself.
    /// </summary>
    public static void Apply(DeviceTensor x, DeviceTensor gain, DeviceTensor bias, DeviceTensor y,
        float epsilon = 1e-5f, DeviceTensor? residual = null)
    {
        Check.Usable(x, nameof(x));
        var device = x.Device;
        Check.Usable(gain, nameof(gain), device);
        Check.Usable(bias, nameof(bias), device);
        Check.Usable(y, nameof(y), device);
        int width = x.Shape[^1];
        Check.Shape(gain, nameof(gain), [width], "(the last dimension of 'x')");
        Check.Shape(bias, nameof(bias), [width], "(the last dimension of 'x')");
        Check.Shape(y, nameof(y), [.. x.Shape], "(the shape of 'x')");
        if (residual is not null)
        {
            Check.Usable(residual, nameof(residual), device);
            Check.Shape(residual, nameof(residual), [.. x.Shape], "(the shape of 'x')");
        }
        if (!(epsilon > 0f) || !float.IsFinite(epsilon))
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "Argument 'epsilon' must be positive and finite.");

        Check.Implemented(device, OpFamily.LayerNorm, "LayerNorm.Apply", x, nameof(x));
        Check.Implemented(device, OpFamily.LayerNorm, "LayerNorm.Apply", gain, nameof(gain));
        Check.Implemented(device, OpFamily.LayerNorm, "LayerNorm.Apply", bias, nameof(bias));
        Check.Implemented(device, OpFamily.LayerNorm, "LayerNorm.Apply", y, nameof(y));
        Check.Implemented(device, OpFamily.LayerNorm, "LayerNorm.Apply", residual, nameof(residual));
        var p = new LayerNormProblem
        {
            Rows = checked((int)(x.Length / width)), Width = width, Epsilon = epsilon, HasResidual = residual is null ? 0 : 1,
        };
        y.MarkWritten();
        device.Backend.LayerNorm(p, x, residual, gain, bias, y);
    }

    /// <summary>
    /// BERT's embeddings in one pass: row r of <paramref name="y"/> = LayerNorm(words[wordIds[r]] + types[typeIds[r]] +
    /// positions[positionIds[r]])·gain + bias, instead of three gathers, two adds and a norm. The tables are [vocab, d],
    /// [positions, d] and [types, d]; the three id lists have one id per row of y ([rows, d] or [batch, L, d] with
    /// batch·L = rows); an id outside its table is an <see cref="ArgumentOutOfRangeException"/> naming the list and row.
    /// </summary>
    public static void EmbeddingSum(ReadOnlySpan<int> wordIds, DeviceTensor words, ReadOnlySpan<int> positionIds, DeviceTensor positions,
        ReadOnlySpan<int> typeIds, DeviceTensor types, DeviceTensor gain, DeviceTensor bias, DeviceTensor y, float epsilon = 1e-12f)
    {
        Check.Usable(words, nameof(words));
        var device = words.Device;
        Check.Usable(positions, nameof(positions), device);
        Check.Usable(types, nameof(types), device);
        Check.Usable(gain, nameof(gain), device);
        Check.Usable(bias, nameof(bias), device);
        Check.Usable(y, nameof(y), device);
        Check.Rank(words, nameof(words), "([vocab, d])", 2);
        int width = words.Shape[1];
        Check.Rank(positions, nameof(positions), "([positions, d])", 2);
        Check.Shape(positions, nameof(positions), [positions.Shape[0], width], "(positions, d of 'words')");
        Check.Rank(types, nameof(types), "([types, d])", 2);
        Check.Shape(types, nameof(types), [types.Shape[0], width], "(types, d of 'words')");
        Check.Shape(gain, nameof(gain), [width], "(d of 'words')");
        Check.Shape(bias, nameof(bias), [width], "(d of 'words')");
        int rows = wordIds.Length;
        if (rows == 0)
            throw new ArgumentException("Argument 'wordIds' must hold at least one id.", nameof(wordIds));
        if (y.Shape[^1] != width || y.Length != (long)rows * width)
            throw new ArgumentException(
                $"Argument 'y' must have shape [{rows}, {width}] (ids, d) or [batch, L, {width}] with batch·L = {rows}, " +
                $"but has {DeviceTensor.ShapeText(y.Shape)}.", nameof(y));
        if (!(epsilon > 0f) || !float.IsFinite(epsilon))
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "Argument 'epsilon' must be positive and finite.");
        var ids = new int[checked(3 * rows)];
        Ids(wordIds, nameof(wordIds), words, ids.AsSpan(0, rows), rows);
        Ids(positionIds, nameof(positionIds), positions, ids.AsSpan(rows, rows), rows);
        Ids(typeIds, nameof(typeIds), types, ids.AsSpan(2 * rows, rows), rows);
        foreach (var (tensor, name) in new[] { (words, nameof(words)), (positions, nameof(positions)), (types, nameof(types)),
                     (gain, nameof(gain)), (bias, nameof(bias)), (y, nameof(y)) })
            Check.Implemented(device, OpFamily.LayerNorm, "LayerNorm.EmbeddingSum", tensor, name);
        foreach (var (tensor, name) in new[] { (words, nameof(words)), (positions, nameof(positions)), (types, nameof(types)),
                     (gain, nameof(gain)), (bias, nameof(bias)) })
            Check.Distinct(y, nameof(y), tensor, name);
        y.MarkWritten();
        device.Backend.EmbeddingLayerNorm(ids, words, positions, types, gain, bias, y, width, epsilon);
    }

    /// <summary>Copies one id list into its third of the ids, checking its length and every id against its table.</summary>
    private static void Ids(ReadOnlySpan<int> source, string name, DeviceTensor table, Span<int> target, int rows)
    {
        if (source.Length != rows)
            throw new ArgumentException($"Argument '{name}' must hold one id per row ({rows}, as 'wordIds'), but holds {source.Length}.", name);
        int limit = table.Shape[0];
        for (int r = 0; r < rows; r++)
        {
            if ((uint)source[r] >= (uint)limit)
                throw new ArgumentOutOfRangeException(name, source[r], $"Id {r} of '{name}' is {source[r]}, outside its table's rows 0..{limit - 1}.");
        }
        source.CopyTo(target);
    }
}
