using GpuAttention.Backends;
using GpuAttention.Problems;
using GpuAttention.Runtime;

namespace GpuAttention.Ops;

/// <summary>Fused masked softmax over the last axis: y = softmax(scale·x + mask).</summary>
public static class Softmax
{
    /// <summary>
    /// Normalises each row of <paramref name="x"/> ([Lq, Lk], [batch, Lq, Lk] or [batch, heads, Lq, Lk]) into
    /// <paramref name="y"/> (same shape; may be <paramref name="x"/> itself). Masked keys get weight 0; a row whose
    /// keys are all masked is all zeros. <paramref name="normalizer"/> picks softmax or the ReLU normaliser.
    /// </summary>
    public static void Apply(DeviceTensor x, DeviceTensor y, AttentionMask? mask = null, float scale = 1f,
        ScoreNormalizer normalizer = ScoreNormalizer.Softmax)
    {
        Check.Usable(x, nameof(x));
        Check.Usable(y, nameof(y), x.Device);
        Check.Rank(x, nameof(x), "([Lq, Lk], [batch, Lq, Lk] or [batch, heads, Lq, Lk])", 2, 3, 4);
        Check.Shape(y, nameof(y), [.. x.Shape], "(the shape of 'x')");
        Check.Finite(scale, nameof(scale));
        if (!Enum.IsDefined(normalizer))
            throw new ArgumentOutOfRangeException(nameof(normalizer), normalizer, "Unknown score normaliser.");
        Check.Implemented(x.Device, OpFamily.Softmax, "Softmax.Apply", x, nameof(x));
        Check.Implemented(x.Device, OpFamily.Softmax, "Softmax.Apply", y, nameof(y));
        var (batch, heads, lq, lk) = x.Rank switch
        {
            2 => (1, 1, x.Shape[0], x.Shape[1]),
            3 => (x.Shape[0], 1, x.Shape[1], x.Shape[2]),
            _ => (x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3]),
        };
        var resolved = (mask ?? AttentionMask.None).Resolve(x.Device, batch, heads, lq, lk, nameof(mask));
        y.MarkWritten();
        x.Device.Backend.Softmax(Problem(batch, heads, lq, lk, scale, normalizer), x, y, resolved);
    }

    internal static SoftmaxProblem Problem(int batch, int heads, int lq, int lk, float scale, ScoreNormalizer normalizer) => new()
    {
        Batch = batch, Heads = heads, Lq = lq, Lk = lk, Scale = scale, Normalizer = (int)normalizer,
    };
}
