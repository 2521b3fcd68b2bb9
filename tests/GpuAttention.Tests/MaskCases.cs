using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Tests;

/// <summary>Named masks built twice: for the op and, independently, for the reference.</summary>
public static class MaskCases
{
    public static readonly string[] Names =
        ["none", "causal", "padding", "additive-2d", "additive-broadcast-heads", "window", "causal+padding", "window+additive"];

    public static (AttentionMask Mask, ReferenceMask Reference, IDisposable? Owned) Make(string name, ComputeDevice device,
        int batch, int heads, int lq, int lk)
    {
        // Row 0 keeps every key but one (when Lk > 1); row 1 keeps none, so fully masked rows are covered.
        int[] lengths = Enumerable.Range(0, batch).Select(b => b == 0 ? Math.Max(lk - 1, 1) : b == 1 ? 0 : lk).ToArray();
        switch (name)
        {
            case "none":
                return (AttentionMask.None, new ReferenceMask(), null);
            case "causal":
                return (AttentionMask.Causal, new ReferenceMask { Right = 0 }, null);
            case "padding":
                return (AttentionMask.KeyPadding(lengths), new ReferenceMask { ValidLengths = lengths }, null);
            case "window":
                return (AttentionMask.SlidingWindow(2, 1), new ReferenceMask { Left = 2, Right = 1 }, null);
            case "causal+padding":
                return (AttentionMask.Causal.And(AttentionMask.KeyPadding(lengths)),
                    new ReferenceMask { Right = 0, ValidLengths = lengths }, null);
            case "additive-2d":
            {
                var values = AdditiveValues(lq * lk, 31);
                var tensor = device.Upload(values, lq, lk);
                return (AttentionMask.AdditiveMask(tensor), new ReferenceMask { Additive = values, AdditiveShape = [lq, lk] }, tensor);
            }
            case "additive-broadcast-heads":
            {
                var values = AdditiveValues(batch * lq * lk, 32);
                var tensor = device.Upload(values, batch, 1, lq, lk);
                return (AttentionMask.AdditiveMask(tensor),
                    new ReferenceMask { Additive = values, AdditiveShape = [batch, 1, lq, lk] }, tensor);
            }
            case "window+additive":
            {
                var values = AdditiveValues(batch * heads * lq * lk, 33);
                var tensor = device.Upload(values, batch, heads, lq, lk);
                return (AttentionMask.SlidingWindow(5, 0).And(AttentionMask.AdditiveMask(tensor)),
                    new ReferenceMask { Left = 5, Right = 0, Additive = values, AdditiveShape = [batch, heads, lq, lk] }, tensor);
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(name), name, null);
        }
    }

    /// <summary>Values in [−1, 1] with every seventh entry −∞ (a hidden key).</summary>
    private static float[] AdditiveValues(int count, int seed)
    {
        var values = RandomData.Uniform(count, seed);
        for (int i = 3; i < count; i += 7)
            values[i] = float.NegativeInfinity;
        return values;
    }
}
