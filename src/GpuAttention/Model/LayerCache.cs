using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>
/// One decoder layer's key/value cache: its self-attention keys and values so far ([batch, heads, capacity, d_k],
/// filled up to the current position) and the cross-attention keys and values of the encoder memory, computed once.
/// </summary>
public sealed class LayerCache(DeviceTensor keys, DeviceTensor values, DeviceTensor memoryKeys, DeviceTensor memoryValues) : IDisposable
{
    /// <summary>Self-attention keys, [batch, heads, capacity, d_k].</summary>
    public DeviceTensor Keys { get; private set; } = keys;

    /// <summary>Self-attention values, [batch, heads, capacity, d_k].</summary>
    public DeviceTensor Values { get; private set; } = values;

    /// <summary>Cross-attention keys of the encoder memory, [batch, heads, S, d_k].</summary>
    public DeviceTensor MemoryKeys { get; } = memoryKeys;

    /// <summary>Cross-attention values of the encoder memory, [batch, heads, S, d_k].</summary>
    public DeviceTensor MemoryValues { get; } = memoryValues;

    /// <summary>Decoding steps the cache holds.</summary>
    public int Capacity => Keys.Shape[2];

    /// <summary>Reorders the batch entries of the self-attention cache: entry i becomes old entry sources[i] (beam search).</summary>
    public void Reorder(ReadOnlySpan<int> sources)
    {
        Keys = Gathered(Keys, sources);
        Values = Gathered(Values, sources);
    }

    private static DeviceTensor Gathered(DeviceTensor x, ReadOnlySpan<int> sources)
    {
        var y = x.Device.Allocate([.. x.Shape]);
        HeadLayout.GatherBatch(x, sources, y);
        x.Dispose();
        return y;
    }

    /// <summary>Frees the device memory this module owns.</summary>
    public void Dispose()
    {
        Keys.Dispose();
        Values.Dispose();
        MemoryKeys.Dispose();
        MemoryValues.Dispose();
    }
}
