using GpuAttention.Cases;

namespace GpuAttention.Tests;

/// <summary>
/// The benchmark cases' own checks, where a case brings a reference of its own: the encoder layer's double-precision
/// composition (ReferenceOps.EncoderLayer) against our layer, which ModelTests also hold to PyTorch's.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class BenchCaseTests
{
    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void EncoderLayerCaseAgreesWithItsReference(string deviceName)
    {
        double error = new EncoderLayerCase(64, 4, 256, 32).Check(TestDevices.Get(deviceName));
        Assert.True(error <= BenchCase.Tolerance, $"max relative error {error:E2}");
    }
}
