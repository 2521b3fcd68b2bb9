using GpuAttention.Runtime;
using GpuAttention.Weights;

namespace GpuAttention.Model;

/// <summary>
/// Hands a model's modules their parameters by state_dict name, uploaded to the device after checking the
/// shape: a missing or wrongly-shaped tensor is an <see cref="InvalidDataException"/> naming it.
/// </summary>
public sealed class WeightSource(ComputeDevice device, IReadOnlyDictionary<string, HostTensor> tensors, string origin)
{
    /// <summary>The device parameters are uploaded to.</summary>
    public ComputeDevice Device { get; } = device;

    /// <summary>True when the file holds <paramref name="name"/>.</summary>
    public bool Has(string name) => tensors.ContainsKey(name);

    /// <summary>Uploads <paramref name="name"/>, which must have <paramref name="shape"/>.</summary>
    public DeviceTensor Load(string name, params int[] shape) => Device.Upload(Host(name, shape).Data, shape);

    /// <summary>Uploads rows [<paramref name="firstRow"/>, firstRow + rows) of the matrix <paramref name="name"/> ([total, cols]).</summary>
    public DeviceTensor LoadRows(string name, int totalRows, int cols, int firstRow, int rows)
    {
        var host = Host(name, totalRows, cols);
        return Device.Upload(host.Data.AsSpan(firstRow * cols, rows * cols), rows, cols);
    }

    /// <summary>Uploads entries [<paramref name="first"/>, first + count) of the vector <paramref name="name"/> ([total]).</summary>
    public DeviceTensor LoadSlice(string name, int total, int first, int count) =>
        Device.Upload(Host(name, total).Data.AsSpan(first, count), count);

    private HostTensor Host(string name, params int[] shape)
    {
        if (!tensors.TryGetValue(name, out var tensor))
            throw new InvalidDataException($"Weights '{origin}' lack tensor '{name}' (expected shape [{string.Join(", ", shape)}]).");
        if (!tensor.Shape.SequenceEqual(shape))
            throw new InvalidDataException(
                $"Weights '{origin}': tensor '{name}' has shape [{string.Join(", ", tensor.Shape)}], expected [{string.Join(", ", shape)}].");
        return tensor;
    }
}
