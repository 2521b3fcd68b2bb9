using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using GpuAttention.Backends;
using GpuAttention.Kernels;

namespace GpuAttention.Runtime;

/// <summary>
/// A dense, row-major tensor of one <see cref="DType"/> in one device's memory; the memory belongs to the device's
/// backend (an ILGPU buffer, or aligned native memory on the managed CPU backend).
/// </summary>
public sealed class DeviceTensor : IDisposable
{
    private readonly int[] shape;
    private TensorStorage? storage;

    internal DeviceTensor(ComputeDevice device, DType dtype, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(shape);
        if ((uint)dtype > (uint)DType.BF16)
            throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype; expected F32, F16 or BF16.");
        device.ThrowIfDisposed();
        if (shape.Length == 0 || shape.Any(d => d <= 0))
            throw new ArgumentException($"Every dimension of a tensor shape must be positive; got {ShapeText(shape)}.", nameof(shape));
        long length = 1;
        foreach (int d in shape)
        {
            if (length > MaxLength / d)
                throw new ArgumentException(
                    $"Shape {ShapeText(shape)} has more than {MaxLength} elements, the most a tensor holds (it must fit one .NET array when read back).",
                    nameof(shape));
            length *= d;
        }
        this.shape = (int[])shape.Clone();
        Device = device;
        DType = dtype;
        Length = length;
        storage = device.Backend.Allocate(dtype, length);
    }

    /// <summary>The most elements a tensor holds: the longest .NET array, so that every tensor can be read back whole.</summary>
    public static long MaxLength => Array.MaxLength;

    /// <summary>The device whose memory holds the tensor.</summary>
    public ComputeDevice Device { get; }

    /// <summary>The element type.</summary>
    public DType DType { get; }

    /// <summary>The dimensions, outermost first.</summary>
    public IReadOnlyList<int> Shape => shape;

    /// <summary>Number of dimensions.</summary>
    public int Rank => shape.Length;

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    /// <summary>True once disposed; a disposed tensor is rejected by every op.</summary>
    public bool IsDisposed => storage is null;

    /// <summary>The backend's memory behind the tensor.</summary>
    internal TensorStorage Storage => storage ?? throw new ObjectDisposedException(nameof(DeviceTensor), $"The tensor {ShapeText(shape)} has been disposed.");

    /// <summary>Every op that writes the tensor calls this before it runs: what was derived from the old contents goes stale.</summary>
    internal void MarkWritten() => Storage.MarkWritten();

    /// <summary>Copies <paramref name="data"/> (exactly <see cref="Length"/> elements) into an F32 tensor.</summary>
    public void CopyFrom(ReadOnlySpan<float> data) => CopyFrom(DType.F32, data, nameof(data));

    /// <summary>Copies <paramref name="data"/> (exactly <see cref="Length"/> elements) into an F16 tensor.</summary>
    public void CopyFrom(ReadOnlySpan<Half> data) => CopyFrom(DType.F16, MemoryMarshal.Cast<Half, ushort>(data), nameof(data));

    /// <summary>Copies <paramref name="data"/> (exactly <see cref="Length"/> elements) into a BF16 tensor.</summary>
    public void CopyFrom(ReadOnlySpan<BFloat16> data) => CopyFrom(DType.BF16, MemoryMarshal.Cast<BFloat16, ushort>(data), nameof(data));

    /// <summary>
    /// Copies the tensor into <paramref name="destination"/> (exactly <see cref="Length"/> elements), waiting for pending
    /// kernels; F16 and BF16 values widen exactly.
    /// </summary>
    public void CopyTo(Span<float> destination)
    {
        CheckDestination(destination.Length, nameof(destination));
        switch (DType)
        {
            case DType.F32:
                Storage.CopyTo(destination);
                break;
            case DType.F16:
                var halves = new Half[Length];
                Storage.CopyTo(MemoryMarshal.Cast<Half, ushort>(halves.AsSpan()));
                TensorPrimitives.ConvertToSingle(halves, destination);
                break;
            default:
                var bits = new ushort[Length];
                Storage.CopyTo(bits.AsSpan());
                for (int i = 0; i < bits.Length; i++)
                    destination[i] = HalfBits.BF16ToFloat(bits[i]);
                break;
        }
    }

    /// <summary>Copies an F16 tensor into <paramref name="destination"/> (exactly <see cref="Length"/> elements).</summary>
    public void CopyTo(Span<Half> destination) => CopyTo(DType.F16, MemoryMarshal.Cast<Half, ushort>(destination), nameof(destination));

    /// <summary>Copies a BF16 tensor into <paramref name="destination"/> (exactly <see cref="Length"/> elements).</summary>
    public void CopyTo(Span<BFloat16> destination) => CopyTo(DType.BF16, MemoryMarshal.Cast<BFloat16, ushort>(destination), nameof(destination));

    /// <summary>Downloads the tensor into a new float array (F16 and BF16 widen exactly).</summary>
    public float[] ToArray()
    {
        var result = new float[Length];
        CopyTo(result);
        return result;
    }

    /// <inheritdoc />
    public override string ToString() => $"DeviceTensor{ShapeText(shape)} {DType} on {Device}";

    /// <inheritdoc />
    public void Dispose() => Interlocked.Exchange(ref storage, null)?.Dispose();

    internal static string ShapeText(IReadOnlyList<int> dims) => "[" + string.Join(", ", dims) + "]";

    /// <summary>Copies <paramref name="data"/>, elements of <paramref name="dtype"/> (16-bit ones as their bits), into the tensor.</summary>
    internal void CopyFrom<T>(DType dtype, ReadOnlySpan<T> data, string parameter) where T : unmanaged
    {
        ThrowIfUnusable();
        CheckDType(dtype, parameter);
        if (data.Length != Length)
            throw new ArgumentException($"Expected {Length} elements for shape {ShapeText(shape)}, got {data.Length}.", parameter);
        MarkWritten();
        Storage.CopyFrom(data);
    }

    private void CopyTo<T>(DType dtype, Span<T> destination, string parameter) where T : unmanaged
    {
        CheckDestination(destination.Length, parameter);
        CheckDType(dtype, parameter);
        Storage.CopyTo(destination);
    }

    private void CheckDestination(int elements, string parameter)
    {
        ThrowIfUnusable();
        if (elements != Length)
            throw new ArgumentException($"Expected room for {Length} elements of shape {ShapeText(shape)}, got {elements}.", parameter);
    }

    private void CheckDType(DType dtype, string parameter)
    {
        if (dtype != DType)
            throw new ArgumentException(
                $"Argument '{parameter}' holds {dtype.ElementType().Name} values, but the tensor {ShapeText(shape)} is {DType}; " +
                "copy its own element type, or convert on the device with Elementwise.Convert.", parameter);
    }

    /// <summary>Use after dispose — of the tensor, or of its device — is an <see cref="ObjectDisposedException"/>.</summary>
    private void ThrowIfUnusable()
    {
        if (IsDisposed)
            throw new ObjectDisposedException(nameof(DeviceTensor), $"The tensor {ShapeText(shape)} has been disposed.");
        Device.ThrowIfDisposed();
    }
}
