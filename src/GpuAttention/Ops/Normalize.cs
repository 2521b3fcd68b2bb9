using GpuAttention.Backends;
using GpuAttention.Runtime;

namespace GpuAttention.Ops;

/// <summary>Vector normalisations over the last axis.</summary>
public static class Normalize
{
    /// <summary>
    /// y = x / max(‖x‖₂, <paramref name="epsilon"/>) over the last axis of <paramref name="x"/> (PyTorch's
    /// <c>F.normalize(x, dim=-1)</c>, whose ε is 1e-12): unit rows, and a zero row stays zeros. y has x's shape and may be x.
    /// </summary>
    public static void L2(DeviceTensor x, DeviceTensor y, float epsilon = 1e-12f)
    {
        Check.Usable(x, nameof(x));
        Check.Usable(y, nameof(y), x.Device);
        Check.Shape(y, nameof(y), [.. x.Shape], "(the shape of 'x')");
        if (!(epsilon > 0f) || !float.IsFinite(epsilon))
            throw new ArgumentOutOfRangeException(nameof(epsilon), epsilon, "Argument 'epsilon' must be positive and finite.");
        Check.Implemented(x.Device, OpFamily.LayerNorm, "Normalize.L2", x, nameof(x));
        Check.Implemented(x.Device, OpFamily.LayerNorm, "Normalize.L2", y, nameof(y));
        int width = x.Shape[^1];
        if (width == 0 || x.Length == 0)
            return;
        Check.GridLimit(x.Length / width, nameof(x), "the number of rows");
        y.MarkWritten();
        x.Device.Backend.L2Normalize(x, y, checked((int)(x.Length / width)), width, epsilon);
    }
}
