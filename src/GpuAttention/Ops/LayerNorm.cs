using GpuAttention.Kernels.Cpu;
using GpuAttention.Runtime;
using ILGPU;
using ILGPU.Runtime;

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

        int rows = checked((int)(x.Length / width));
        y.MarkWritten();
        if (device.IsManaged)
        {
            unsafe
            {
                CpuLayerNorm.LayerNorm(x.Pointer, residual is null ? null : residual.Pointer, gain.Pointer, bias.Pointer, y.Pointer,
                    rows, width, epsilon);
            }
            return;
        }
        var profile = device.Profile!;
        int groupSize = profile.RowGroupSize;
        bool cacheRow = ((long)width + groupSize) * sizeof(float) <= profile.SharedMemoryBytes;
        var config = new KernelConfig(rows, groupSize,
            SharedMemoryConfig.RequestDynamic<float>(groupSize + (cacheRow ? width : 1)));
        device.Kernels.LayerNorm(config, x.View, residual?.View ?? default, gain.View, bias.View, y.View, width, epsilon,
            residual is null ? 0 : 1, cacheRow ? 1 : 0);
    }
}
