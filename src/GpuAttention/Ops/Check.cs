using GpuAttention.Backends;
using GpuAttention.Runtime;

namespace GpuAttention.Ops;

/// <summary>Argument validation shared by the ops; every failure names the argument and both shapes.</summary>
internal static class Check
{
    /// <summary>
    /// Non-null, on <paramref name="device"/> (when given), and neither it nor its device disposed (an
    /// <see cref="ObjectDisposedException"/>, as for any use after dispose).
    /// </summary>
    public static void Usable(DeviceTensor? tensor, string name, ComputeDevice? device = null)
    {
        ArgumentNullException.ThrowIfNull(tensor, name);
        if (tensor.IsDisposed)
            throw new ObjectDisposedException(nameof(DeviceTensor), $"Argument '{name}' ({DeviceTensor.ShapeText(tensor.Shape)}) has been disposed.");
        if (device is not null && !ReferenceEquals(tensor.Device, device))
            throw new ArgumentException(
                $"Argument '{name}' lives on device #{tensor.Device.Ordinal} ({tensor.Device}), but the other operands live on device #{device.Ordinal} ({device}); " +
                "all operands of an op must live on one device.", name);
        tensor.Device.ThrowIfDisposed();
    }

    /// <summary>The tensor has exactly <paramref name="expected"/>; <paramref name="meaning"/> names the axes.</summary>
    public static void Shape(DeviceTensor tensor, string name, int[] expected, string meaning)
    {
        if (!tensor.Shape.SequenceEqual(expected))
            throw new ArgumentException(
                $"Argument '{name}' must have shape {DeviceTensor.ShapeText(expected)} {meaning}, but has {DeviceTensor.ShapeText(tensor.Shape)}.",
                name);
    }

    /// <summary>The tensor's rank is one of <paramref name="ranks"/>.</summary>
    public static void Rank(DeviceTensor tensor, string name, string meaning, params int[] ranks)
    {
        if (!ranks.Contains(tensor.Rank))
            throw new ArgumentException(
                $"Argument '{name}' must have rank {string.Join(" or ", ranks)} {meaning}, but has shape {DeviceTensor.ShapeText(tensor.Shape)}.",
                name);
    }

    /// <summary><paramref name="output"/> is not the same tensor as an input the kernel reads while it writes.</summary>
    public static void Distinct(DeviceTensor output, string outputName, DeviceTensor input, string inputName)
    {
        if (ReferenceEquals(output, input))
            throw new ArgumentException($"Argument '{outputName}' must not be the same tensor as '{inputName}'.", outputName);
    }

    /// <summary>A launch dimension fits the grid limit every backend shares (CUDA's 65535 in y and z).</summary>
    public static void GridLimit(long value, string name, string what)
    {
        const int limit = 65535;
        if (value > limit)
            throw new ArgumentException($"Argument '{name}': {what} is {value}, more than the {limit} a launch grid allows.", name);
    }

    /// <summary>The tensor's elements fit the one-dimensional launch grid of an elementwise op.</summary>
    public static void GridLimit(DeviceTensor tensor, string name)
    {
        if (tensor.Length > int.MaxValue)
            throw new ArgumentException(
                $"Argument '{name}' {DeviceTensor.ShapeText(tensor.Shape)} has {tensor.Length} elements, more than the {int.MaxValue} an elementwise launch covers.",
                name);
    }

    /// <summary>A finite scalar.</summary>
    public static void Finite(float value, string name)
    {
        if (!float.IsFinite(value))
            throw new ArgumentOutOfRangeException(name, value, $"Argument '{name}' must be finite.");
    }

    /// <summary>
    /// An operand that no backend takes in another dtype yet is F32 (or absent); otherwise a
    /// <see cref="NotSupportedException"/> naming the op, the argument, its dtype and the device.
    /// </summary>
    public static void F32(ComputeDevice device, string op, DeviceTensor? tensor, string name)
    {
        if (tensor is null || tensor.DType == DType.F32)
            return;
        throw new NotSupportedException(
            $"{op} does not take {tensor.DType} for argument '{name}' on {device} or any other device yet: it must be F32; convert it with Elementwise.Convert.");
    }

    /// <summary>
    /// The device's backend implements <paramref name="family"/> for the tensor's dtype (every op implements F32; a null
    /// tensor is an absent optional operand); otherwise a <see cref="NotSupportedException"/> naming the op, the dtype and
    /// the device. One call per operand, cheap for F32: it runs on every op, small ones included.
    /// </summary>
    public static void Implemented(ComputeDevice device, OpFamily family, string op, DeviceTensor? tensor, string name)
    {
        if (tensor is null || tensor.DType == DType.F32 || device.Backend.Implements(family, tensor.DType))
            return;
        throw new NotSupportedException(
            $"{op} does not implement {tensor.DType} on {device} yet (argument '{name}' is {tensor.DType}); convert it to F32 with Elementwise.Convert.");
    }

    /// <summary>An op with F32 operands only: anything else is a <see cref="NotSupportedException"/> naming the argument.</summary>
    public static void F32Only(DeviceTensor? tensor, string name, string op, string alternative)
    {
        if (tensor is not null && tensor.DType != DType.F32)
            throw new NotSupportedException($"{op} takes F32 operands (argument '{name}' is {tensor.DType} on {tensor.Device}){alternative}.");
    }
}
