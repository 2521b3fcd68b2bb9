using GpuAttention.Kernels;
using GpuAttention.Kernels.Cpu;
using GpuAttention.Runtime;
using ILGPU;
using ILGPU.Runtime;

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
        var (batch, heads, lq, lk) = AttentionShape.Of(x);
        using var resolved = (mask ?? AttentionMask.None).Resolve(x.Device, batch, heads, lq, lk, nameof(mask));
        y.MarkWritten();
        if (x.Device.IsManaged)
        {
            unsafe
            {
                CpuSoftmax.MaskedSoftmax(x.Pointer, y.Pointer, resolved.Host,
                    new SoftmaxParams { Heads = heads, Lq = lq, Lk = lk, Scale = scale, Normalizer = (int)normalizer }, batch);
            }
            return;
        }
        Launch(x.Device, x.View, y.View, resolved.Parameters, batch, heads, lq, lk, scale, normalizer);
    }

    /// <summary>Launches without validation over rows of a [batch, heads, lq, lk] view.</summary>
    internal static void Launch(ComputeDevice device, ArrayView<float> x, ArrayView<float> y, MaskParams mask,
        int batch, int heads, int lq, int lk, float scale, ScoreNormalizer normalizer)
    {
        var profile = device.Profile!;
        int groupSize = profile.RowGroupSize;
        bool cacheRow = ((long)lk + groupSize) * sizeof(float) <= profile.SharedMemoryBytes;
        var p = new SoftmaxParams
        {
            Heads = heads, Lq = lq, Lk = lk, Scale = scale,
            Normalizer = (int)normalizer,
            CacheRow = cacheRow ? 1 : 0,
        };
        var config = new KernelConfig(checked(batch * heads * lq), groupSize,
            SharedMemoryConfig.RequestDynamic<float>(groupSize + (cacheRow ? lk : 1)));
        device.Kernels.MaskedSoftmax(config, x, y, mask, p);
    }
}

/// <summary>Reads a score or operand tensor as [batch, heads, rows, cols].</summary>
internal static class AttentionShape
{
    public static (int Batch, int Heads, int Rows, int Cols) Of(DeviceTensor t) => t.Rank switch
    {
        2 => (1, 1, t.Shape[0], t.Shape[1]),
        3 => (t.Shape[0], 1, t.Shape[1], t.Shape[2]),
        _ => (t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]),
    };
}
