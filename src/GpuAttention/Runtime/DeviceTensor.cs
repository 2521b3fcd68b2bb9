using ILGPU;
using ILGPU.Runtime;

namespace GpuAttention.Runtime;

/// <summary>
/// A dense, row-major fp32 tensor in one device's memory: an ILGPU buffer on an accelerator, aligned native
/// memory on the managed CPU backend.
/// </summary>
public sealed unsafe class DeviceTensor : IDisposable
{
    private readonly int[] shape;
    private MemoryBuffer1D<float, Stride1D.Dense>? buffer;
    private HostBuffer? host;
    private PackedOperand? packed;
    private (long Version, bool Transposed)? packCandidate;

    internal DeviceTensor(ComputeDevice device, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(shape);
        device.ThrowIfDisposed();
        if (shape.Length == 0 || shape.Any(d => d <= 0))
            throw new ArgumentException($"Every dimension of a tensor shape must be positive; got {ShapeText(shape)}.", nameof(shape));
        long length = 1;
        foreach (int d in shape)
            length = checked(length * d);
        this.shape = (int[])shape.Clone();
        Device = device;
        Length = length;
        try
        {
            if (device.IsManaged)
                host = device.HostBuffers.Rent(length);
            else
                buffer = device.Accelerator.Allocate1D<float>(length);
        }
        catch (Exception e) when (e is AcceleratorException or OutOfMemoryException)
        {
            throw new InsufficientMemoryException(
                $"Allocating a {ShapeText(shape)} tensor ({length * sizeof(float)} bytes) on {device} failed: {e.Message}", e);
        }
        device.TrackAllocation(length * sizeof(float));
    }

    /// <summary>The device whose memory holds the tensor.</summary>
    public ComputeDevice Device { get; }

    /// <summary>The dimensions, outermost first.</summary>
    public IReadOnlyList<int> Shape => shape;

    /// <summary>Number of dimensions.</summary>
    public int Rank => shape.Length;

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    /// <summary>True once disposed; a disposed tensor is rejected by every op.</summary>
    public bool IsDisposed => buffer is null && host is null;

    /// <summary>The ILGPU view of an accelerator's tensor.</summary>
    internal ArrayView<float> View => (buffer ?? throw new ObjectDisposedException(nameof(DeviceTensor))).View;

    /// <summary>The first element of a managed CPU backend's tensor.</summary>
    internal float* Pointer => (host ?? throw new ObjectDisposedException(nameof(DeviceTensor))).Pointer;

    /// <summary>Counts writes (uploads and op outputs): a packed copy of the tensor is valid while this is unchanged.</summary>
    internal long Version { get; private set; }

    /// <summary>Every op that writes the tensor calls this before it runs.</summary>
    internal void MarkWritten() => Version++;

    /// <summary>
    /// The managed backend's packed copy of this tensor as a matmul's B operand (<paramref name="transposed"/> as
    /// used), made the second time the same contents are multiplied in the same way — a weight — and reused until the
    /// tensor is written; null when there is none yet. <paramref name="pack"/> fills a buffer of <paramref name="length"/> floats.
    /// </summary>
    internal PackedOperand? PackedAsMatMulB(bool transposed, long length, PackedOperand.Fill pack)
    {
        if (packed is { } current && current.Version == Version && current.Transposed == transposed)
            return current;
        if (packCandidate != (Version, transposed))
        {
            packCandidate = (Version, transposed);
            return null;
        }
        DropPacked();
        var buffer = new HostBuffer(length);
        pack(buffer.Pointer);
        Device.TrackAllocation(length * sizeof(float));
        packed = new PackedOperand(buffer, Version, transposed);
        return packed;
    }

    private void DropPacked()
    {
        if (Interlocked.Exchange(ref packed, null) is not { } old)
            return;
        old.Buffer.Dispose();
        Device.TrackAllocation(-old.Buffer.Length * sizeof(float));
    }

    /// <summary>Copies <paramref name="data"/> (exactly <see cref="Length"/> elements) into the tensor.</summary>
    public void CopyFrom(ReadOnlySpan<float> data)
    {
        ThrowIfDisposed(nameof(data));
        if (data.Length != Length)
            throw new ArgumentException($"Expected {Length} elements for shape {ShapeText(shape)}, got {data.Length}.", nameof(data));
        MarkWritten();
        if (host is not null)
            data.CopyTo(new Span<float>(Pointer, data.Length));
        else
            View.CopyFromCPU(data);
    }

    /// <summary>Copies the tensor into <paramref name="destination"/> (exactly <see cref="Length"/> elements), waiting for pending kernels.</summary>
    public void CopyTo(Span<float> destination)
    {
        ThrowIfDisposed(nameof(destination));
        if (destination.Length != Length)
            throw new ArgumentException($"Expected room for {Length} elements of shape {ShapeText(shape)}, got {destination.Length}.", nameof(destination));
        Device.Synchronize();
        if (host is not null)
            new ReadOnlySpan<float>(Pointer, destination.Length).CopyTo(destination);
        else
            View.CopyToCPU(destination);
    }

    /// <summary>Downloads the tensor into a new array.</summary>
    public float[] ToArray()
    {
        var result = new float[Length];
        CopyTo(result);
        return result;
    }

    /// <inheritdoc />
    public override string ToString() => $"DeviceTensor{ShapeText(shape)} on {Device}";

    /// <inheritdoc />
    public void Dispose()
    {
        var ownedBuffer = Interlocked.Exchange(ref buffer, null);
        var ownedHost = Interlocked.Exchange(ref host, null);
        if (ownedBuffer is null && ownedHost is null)
            return;
        DropPacked();
        ownedBuffer?.Dispose();
        if (ownedHost is not null)
            Device.HostBuffers.Return(ownedHost);
        Device.TrackAllocation(-Length * sizeof(float));
    }

    internal static string ShapeText(IReadOnlyList<int> dims) => "[" + string.Join(", ", dims) + "]";

    private void ThrowIfDisposed(string parameter)
    {
        if (IsDisposed)
            throw new ArgumentException($"The tensor {ShapeText(shape)} has been disposed.", parameter);
    }
}
