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
}
