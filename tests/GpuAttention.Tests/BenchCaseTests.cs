using GpuAttention.Cases;

namespace GpuAttention.Tests;

/// <summary>
/// The benchmark cases' own checks, where a case brings a reference of its own: the encoder layer's double-precision
/// composition (ReferenceOps.EncoderLayer) against our layer, which ModelTests also hold to PyTorch's; the BERT encoder's
/// (ReferenceOps.Bert), which BertTests holds to ONNX Runtime on the real model.
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

    [Theory]
    [MemberData(nameof(TestDevices.All), MemberType = typeof(TestDevices))]
    public void BertCaseAgreesWithItsReference(string deviceName)
    {
        var bert = new BertCase(1, 16, false, Runtime.DType.F32, BertCase.Small);
        double error = bert.Check(TestDevices.Get(deviceName));
        Assert.True(error <= bert.CheckTolerance, $"max relative error {error:E2}");
    }

    /// <summary>In bf16 the case's error is the rounding, inside its stated budget yet far above fp32's (a budget that cannot fail is no check).</summary>
    [Fact]
    public void BertCaseInBf16StaysInsideItsRoundingBudget()
    {
        var bert = new BertCase(1, 16, false, Runtime.DType.BF16, BertCase.Small);
        double error = bert.Check(TestDevices.Get("cpu"));
        Assert.InRange(error, 1e-4, bert.CheckTolerance);
    }
}
