using GpuAttention.Weights;
using GpuAttention.Ops;
using GpuAttention.Reference;
using GpuAttention.Runtime;

namespace GpuAttention.Cases;

/// <summary>y = softmax(x/8 + mask) over the rows of a [batch, heads, L, L] score tensor; bytes = x read + y written.</summary>
public sealed class SoftmaxCase(int batch, int heads, int length, bool causal)
    : BenchCase("softmax", causal ? "causal" : "unmasked", $"B{batch} H{heads} L{length}", length, "L (rows of L scores)",
        2.0 * sizeof(float) * batch * heads * length * length, WorkUnit.Bytes)
{
    private const float Scale = 0.125f;

    private AttentionMask Mask => causal ? AttentionMask.Causal : AttentionMask.None;

    /// <summary>16 query rows of the benchmarked row length: the same launch path.</summary>
    public override double Check(ComputeDevice device)
    {
        const int checkHeads = 2, rows = 16;
        var x = RandomData.Uniform(checkHeads * rows * length, 2);
        using var tx = device.Upload(x, 1, checkHeads, rows, length);
        using var ty = device.Allocate(1, checkHeads, rows, length);
        Softmax.Apply(tx, ty, Mask, Scale);
        var reference = causal ? new ReferenceMask { Right = 0 } : new ReferenceMask();
        return RelativeError(ty.ToArray(), ReferenceOps.Softmax(x, 1, checkHeads, rows, length, reference, Scale));
    }

    public override PreparedCase Prepare(ComputeDevice device)
    {
        var x = device.Upload(RandomData.Uniform(batch * heads * length * length, 1), batch, heads, length, length);
        var y = device.Allocate(batch, heads, length, length);
        return new PreparedCase(device, () => Softmax.Apply(x, y, Mask, Scale),
            () => new Dictionary<string, HostTensor> { ["x"] = PreparedCase.Host(x), ["output"] = PreparedCase.Host(y) }, x, y);
    }

    /// <inheritdoc />
    public override object Problem => new { op = "softmax", batch, heads, length, causal, scale = Scale };
}
