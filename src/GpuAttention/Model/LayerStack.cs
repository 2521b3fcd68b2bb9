using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>Runs a stack of layers and its final norm, each output feeding the next, intermediates freed as they go.</summary>
internal static class LayerStack
{
    /// <summary>
    /// <paramref name="forward"/>(layer, index, input) for each layer in turn, then <paramref name="norm"/>: a new tensor, and
    /// <paramref name="x"/> left as it is (a copy of it when there is nothing to run).
    /// </summary>
    public static DeviceTensor Run<TLayer>(DeviceTensor x, IReadOnlyList<TLayer> layers, LayerNormalization? norm,
        Func<TLayer, int, DeviceTensor, DeviceTensor> forward)
    {
        DeviceTensor? current = null;
        try
        {
            for (int i = 0; i < layers.Count; i++)
                Replace(ref current, forward(layers[i], i, current ?? x));
            if (norm is not null)
                Replace(ref current, norm.Forward(current ?? x));
            if (current is null)
            {
                current = x.Device.Allocate([.. x.Shape]);
                Elementwise.Scale(x, 1f, current);
            }
            return current;
        }
        catch
        {
            current?.Dispose();
            throw;
        }
    }

    private static void Replace(ref DeviceTensor? current, DeviceTensor next)
    {
        current?.Dispose();
        current = next;
    }
}
