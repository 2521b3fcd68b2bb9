using GpuAttention.Weights;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Cases;

/// <summary>Layer norm over [rows, width], with or without the fused residual add; bytes = x (, residual), gain, bias read + y written.</summary>
public sealed class LayerNormCase(int rows, int width, bool residual)
    : BenchCase("layer norm", residual ? "with residual" : "plain", $"{rows}x{width}", width, "width",
        sizeof(float) * ((residual ? 3.0 : 2.0) * rows * width + 2.0 * width), WorkUnit.Bytes)
{
    private const float Epsilon = 1e-5f;

    /// <summary>16 rows of the benchmarked width: the same launch path.</summary>
    public override double Check(ComputeDevice device)
    {
        const int checkRows = 16;
        var (x, r, g, b) = (RandomData.Uniform(checkRows * width, 5), RandomData.Uniform(checkRows * width, 6),
            RandomData.Uniform(width, 7), RandomData.Uniform(width, 8));
        using var tx = device.Upload(x, checkRows, width);
        using var tr = device.Upload(r, checkRows, width);
        using var tg = device.Upload(g, width);
        using var tb = device.Upload(b, width);
        using var ty = device.Allocate(checkRows, width);
        LayerNorm.Apply(tx, tg, tb, ty, Epsilon, residual ? tr : null);
        return RelativeError(ty.ToArray(), ReferenceOps.LayerNorm(x, residual ? r : null, g, b, width, Epsilon));
    }

    public override PreparedCase Prepare(ComputeDevice device)
    {
        var x = device.Upload(RandomData.Uniform(rows * width, 1), rows, width);
        var r = residual ? device.Upload(RandomData.Uniform(rows * width, 2), rows, width) : null;
        var g = device.Upload(RandomData.Uniform(width, 3), width);
        var b = device.Upload(RandomData.Uniform(width, 4), width);
        var y = device.Allocate(rows, width);
        return new PreparedCase(device, () => LayerNorm.Apply(x, g, b, y, Epsilon, r),
            () =>
            {
                var tensors = new Dictionary<string, HostTensor>
                {
                    ["x"] = PreparedCase.Host(x), ["weight"] = PreparedCase.Host(g), ["bias"] = PreparedCase.Host(b), ["output"] = PreparedCase.Host(y),
                };
                if (r is not null)
                    tensors["residual"] = PreparedCase.Host(r);
                return tensors;
            },
            [x, g, b, y, .. r is null ? Array.Empty<IDisposable>() : [r]]);
    }

    /// <inheritdoc />
    public override object Problem => new { op = "layerNorm", rows, width, residual, epsilon = Epsilon };
}
