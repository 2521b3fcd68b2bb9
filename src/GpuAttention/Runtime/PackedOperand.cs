namespace GpuAttention.Runtime;

/// <summary>A tensor's contents repacked for a managed kernel, tagged with the <see cref="DeviceTensor.Version"/> it was made from.</summary>
internal sealed unsafe class PackedOperand(HostBuffer buffer, long version, bool transposed)
{
    /// <summary>Writes the packed form into the given buffer.</summary>
    public delegate void Fill(float* destination);

    public HostBuffer Buffer { get; } = buffer;

    public long Version { get; } = version;

    public bool Transposed { get; } = transposed;
}
