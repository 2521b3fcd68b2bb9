using GpuAttention.Ops;
using GpuAttention.Runtime;
using GpuAttention.Weights;

namespace GpuAttention.Model;

/// <summary>
/// Hands a model's modules their parameters by state_dict name, uploaded to the device after checking the
/// shape: a missing or wrongly-shaped tensor is an <see cref="InvalidDataException"/> naming it. It remembers what it
/// uploaded, so a model that fails half-way through loading frees what it had, and which names were used, so a file
/// holding tensors the model does not use is an error rather than a silently different model.
/// </summary>
public sealed class WeightSource(ComputeDevice device, IReadOnlyDictionary<string, HostTensor> tensors, string origin)
{
    private readonly HashSet<string> used = new(StringComparer.Ordinal);
    private readonly List<DeviceTensor> uploaded = [];

    /// <summary>The device parameters are uploaded to.</summary>
    public ComputeDevice Device { get; } = device;

    /// <summary>
    /// The dtype the weight matrices of <see cref="Linear"/> layers are held in: F32 (the default), or BF16 / F16 — rounded
    /// to nearest-even once at load, for half the memory and the tensor-core GEMM on CUDA. Biases, norms and embeddings
    /// stay F32.
    /// </summary>
    public DType LinearDType
    {
        get;
        init => field = value is DType.F32 or DType.BF16 or DType.F16
            ? value
            : throw new ArgumentOutOfRangeException(nameof(LinearDType), value, "Linear weights are F32, BF16 or F16.");
    } = DType.F32;

    /// <summary>Uploads <paramref name="name"/>, which must have <paramref name="shape"/>.</summary>
    public DeviceTensor Load(string name, params int[] shape) => Uploaded(Device.Upload(Host(name, shape).Data, shape));

    /// <summary>Uploads the weight matrix <paramref name="name"/> [rows, cols] of a <see cref="Linear"/> layer, in <see cref="LinearDType"/>.</summary>
    public DeviceTensor LoadLinearWeight(string name, int rows, int cols) => InLinearDType(Load(name, rows, cols));

    /// <summary>Rows [<paramref name="firstRow"/>, firstRow + rows) of <paramref name="name"/> ([total, cols]) as a <see cref="Linear"/> weight, in <see cref="LinearDType"/>.</summary>
    public DeviceTensor LoadLinearWeightRows(string name, int totalRows, int cols, int firstRow, int rows) =>
        InLinearDType(LoadRows(name, totalRows, cols, firstRow, rows));

    /// <summary>
    /// The matrices <paramref name="names"/> (each [rows, cols]) stacked row-wise into one [names·rows, cols] <see cref="Linear"/>
    /// weight, in <see cref="LinearDType"/>: e.g. separate query, key and value weights as one Q|K|V projection.
    /// </summary>
    public DeviceTensor LoadLinearWeightStacked(IReadOnlyList<string> names, int rows, int cols) =>
        InLinearDType(LoadStacked(names, rows, cols));

    /// <summary>The tensors <paramref name="names"/>, each of <paramref name="shape"/>, stacked along the first axis: [names·shape[0], shape[1], …].</summary>
    public DeviceTensor LoadStacked(IReadOnlyList<string> names, params int[] shape)
    {
        long each = shape.Aggregate(1L, (product, dim) => product * dim);
        var data = new float[checked(names.Count * each)];
        for (int i = 0; i < names.Count; i++)
            Host(names[i], shape).Data.AsSpan(0, (int)each).CopyTo(data.AsSpan((int)(i * each)));
        return Uploaded(Device.Upload(data, [checked(names.Count * shape[0]), .. shape[1..]]));
    }

    /// <summary>Uploads rows [<paramref name="firstRow"/>, firstRow + rows) of the matrix <paramref name="name"/> ([total, cols]).</summary>
    public DeviceTensor LoadRows(string name, int totalRows, int cols, int firstRow, int rows)
    {
        var host = Host(name, totalRows, cols);
        return Uploaded(Device.Upload(host.Data.AsSpan(firstRow * cols, rows * cols), rows, cols));
    }

    /// <summary>Uploads entries [<paramref name="first"/>, first + count) of the vector <paramref name="name"/> ([total]).</summary>
    public DeviceTensor LoadSlice(string name, int total, int first, int count) =>
        Uploaded(Device.Upload(Host(name, total).Data.AsSpan(first, count), count));

    /// <summary>Throws <see cref="InvalidDataException"/> naming the tensors of the file that nothing loaded.</summary>
    public void ThrowIfUnused()
    {
        var unused = tensors.Keys.Where(name => !used.Contains(name)).Order(StringComparer.Ordinal).ToList();
        if (unused.Count > 0)
            throw new InvalidDataException(
                $"Weights '{origin}' hold {unused.Count} tensor(s) the model config does not use: {string.Join(", ", unused.Take(10))}" +
                (unused.Count > 10 ? ", …" : "") + ". Check the config's layer counts and options against the file.");
    }

    /// <summary>How many tensors have been uploaded so far (a mark for <see cref="DisposeUploadedSince"/>).</summary>
    internal int UploadedCount => uploaded.Count;

    /// <summary>Frees the tensors uploaded after <paramref name="mark"/>: what a failed load had built.</summary>
    internal void DisposeUploadedSince(int mark)
    {
        for (int i = mark; i < uploaded.Count; i++)
            uploaded[i].Dispose();
        uploaded.RemoveRange(mark, uploaded.Count - mark);
    }

    /// <summary>The uploaded F32 <paramref name="weight"/> as <see cref="LinearDType"/> (the F32 copy replaced and freed).</summary>
    private DeviceTensor InLinearDType(DeviceTensor weight)
    {
        if (LinearDType == DType.F32)
            return weight;
        var narrow = Uploaded(Device.Allocate(LinearDType, [.. weight.Shape]));
        Elementwise.Convert(weight, narrow);
        uploaded.Remove(weight);
        weight.Dispose();
        return narrow;
    }

    private DeviceTensor Uploaded(DeviceTensor tensor)
    {
        uploaded.Add(tensor);
        return tensor;
    }

    private HostTensor Host(string name, params int[] shape)
    {
        if (!tensors.TryGetValue(name, out var tensor))
            throw new InvalidDataException($"Weights '{origin}' lack tensor '{name}' (expected shape [{string.Join(", ", shape)}]).");
        if (!tensor.Shape.SequenceEqual(shape))
            throw new InvalidDataException(
                $"Weights '{origin}': tensor '{name}' has shape [{string.Join(", ", tensor.Shape)}], expected [{string.Join(", ", shape)}].");
        used.Add(name);
        return tensor;
    }
}
