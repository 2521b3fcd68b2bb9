using GpuAttention.Backends.Ilgpu;
using GpuAttention.Problems;
using GpuAttention.Ops;
using GpuAttention.Runtime;

namespace GpuAttention.Tests;

/// <summary>
/// Every public entry point rejects bad input before launching: an ArgumentException naming the argument and
/// both shapes, and the caller's output left as it was.
/// </summary>
[Collection(AcceleratorCollection.Name)]
public sealed class BadInputTests
{
    private static ComputeDevice Device => TestDevices.Get("cpu");

    private static DeviceTensor Filled(params int[] shape)
    {
        long n = shape.Aggregate(1L, (a, b) => a * b);
        return Device.Upload(Enumerable.Repeat(7f, (int)n).ToArray(), shape);
    }

    /// <summary>Asserts the throw, the parameter name, the message fragments, and that <paramref name="output"/> still holds 7s.</summary>
    private static void Rejects<TException>(Action call, string parameter, DeviceTensor? output, params string[] fragments)
        where TException : ArgumentException
    {
        var e = Assert.ThrowsAny<TException>(call);
        Assert.Equal(parameter, e.ParamName);
        foreach (string fragment in fragments)
            Assert.Contains(fragment, e.Message);
        if (output is not null)
            Assert.All(output.ToArray(), v => Assert.Equal(7f, v));
    }

    [Fact]
    public void MatMulRejectsMismatchedShapes()
    {
        using var a = Filled(4, 5);
        using var b = Filled(6, 3);
        using var b3 = Filled(3, 5, 3);
        using var a2 = Filled(2, 4, 5);
        using var c = Filled(4, 3);
        using var bias = Filled(4);
        using var good = Filled(5, 3);
        Rejects<ArgumentException>(() => MatMul.Multiply(a, b, c), "b", c, "[5, N]", "[6, 3]");
        Rejects<ArgumentException>(() => MatMul.Multiply(a2, b3, c), "b", c, "batch 2", "[3, 5, 3]");
        Rejects<ArgumentException>(() => MatMul.Multiply(a, good, c, bias: bias), "bias", c, "[3]", "[4]");
        Rejects<ArgumentException>(() => MatMul.Multiply(a2, good, c), "c", c, "[2, 4, 3]", "[4, 3]");
        Rejects<ArgumentException>(() => MatMul.Multiply(a, good, a), "c", null);
        Rejects<ArgumentOutOfRangeException>(() => MatMul.Multiply(a, good, c, alpha: float.NaN), "alpha", c);
    }

    [Fact]
    public void DisposedOrForeignTensorsAreRejected()
    {
        using var a = Filled(2, 2);
        using var c = Filled(2, 2);
        var gone = Filled(2, 2);
        gone.Dispose();
        Assert.Contains("'b'", Assert.Throws<ObjectDisposedException>(() => MatMul.Multiply(a, gone, c)).Message);
        Assert.All(c.ToArray(), v => Assert.Equal(7f, v));
        using var foreign = TestDevices.Get(TestDevices.GpuProfileOnCpu).Upload(new float[4], 2, 2);
        Rejects<ArgumentException>(() => MatMul.Multiply(a, foreign, c), "b", c, "lives on");
        Assert.Contains("disposed", Assert.Throws<ObjectDisposedException>(() => gone.ToArray()).Message);
    }

    [Fact]
    public void TensorsRejectBadShapesAndLengths()
    {
        Rejects<ArgumentException>(() => Device.Allocate(3, 0), "shape", null, "[3, 0]");
        Rejects<ArgumentException>(() => Device.Allocate(-1), "shape", null, "[-1]");
        Rejects<ArgumentException>(() => Device.Upload(new float[5], 2, 3), "data", null, "6", "5");
    }

    [Fact]
    public void SoftmaxRejectsBadMasksAndShapes()
    {
        using var x = Filled(2, 1, 3, 4);
        using var y = Filled(2, 1, 3, 4);
        using var wrongY = Filled(2, 3, 4);
        using var wrongMask = Filled(4, 3);
        Rejects<ArgumentException>(() => Softmax.Apply(x, wrongY), "y", null, "[2, 1, 3, 4]", "[2, 3, 4]");
        Rejects<ArgumentException>(() => Softmax.Apply(x, y, AttentionMask.KeyPadding(4, 5)), "mask", y, "0..4", "5");
        Rejects<ArgumentException>(() => Softmax.Apply(x, y, AttentionMask.KeyPadding(1, 2, 3)), "mask", y, "[2]", "[3]");
        Rejects<ArgumentException>(() => Softmax.Apply(x, y, AttentionMask.AdditiveMask(wrongMask)), "mask", y, "[3, 4]", "[4, 3]");
        Assert.Throws<ArgumentOutOfRangeException>(() => AttentionMask.SlidingWindow(-1, 0));
        Assert.Throws<ArgumentException>(() => AttentionMask.KeyPadding(1).And(AttentionMask.KeyPadding(2)));
    }

    [Fact]
    public void AttentionRejectsMismatchedOperands()
    {
        using var q = Filled(1, 2, 3, 8);
        using var k = Filled(1, 2, 5, 8);
        using var v = Filled(1, 2, 5, 8);
        using var o = Filled(1, 2, 3, 8);
        using var kWrongDim = Filled(1, 2, 5, 4);
        using var vShort = Filled(1, 2, 4, 8);
        using var lseWrong = Filled(1, 2, 5);
        Rejects<ArgumentException>(() => Attention.Fused(q, kWrongDim, v, o), "k", o, "[1, 2, 5, 8]", "[1, 2, 5, 4]");
        Rejects<ArgumentException>(() => Attention.Fused(q, k, vShort, o), "v", o, "[1, 2, 5, 8]", "[1, 2, 4, 8]");
        Rejects<ArgumentException>(() => Attention.Unfused(q, k, vShort, o), "v", o, "[1, 2, 5, 8]");
        Rejects<ArgumentException>(() => Attention.Fused(q, k, v, o, logSumExp: lseWrong), "logSumExp", o, "[1, 2, 3]", "[1, 2, 5]");
        Rejects<ArgumentException>(() => Attention.Fused(q, k, v, o, AttentionMask.KeyPadding(6)), "mask", o, "0..5", "6");
        Rejects<ArgumentException>(() => Attention.Fused(q, k, v, q), "output", null, "'q'");
        using var wideQ = Filled(1, 1, 2, Attention.MaxHeadDim + 1);
        using var wideK = Filled(1, 1, 2, Attention.MaxHeadDim + 1);
        using var wideO = Filled(1, 1, 2, Attention.MaxHeadDim + 1);
        Rejects<ArgumentException>(() => Attention.Fused(wideQ, wideK, wideK, wideO), "q", wideO, "257", "1..256");
    }

    [Fact]
    public void LayerNormAndElementwiseRejectBadInput()
    {
        using var x = Filled(3, 4);
        using var gain = Filled(4);
        using var shortBias = Filled(3);
        using var y = Filled(3, 4);
        Rejects<ArgumentException>(() => LayerNorm.Apply(x, gain, shortBias, y), "bias", y, "[4]", "[3]");
        Rejects<ArgumentOutOfRangeException>(() => LayerNorm.Apply(x, gain, gain, y, epsilon: 0f), "epsilon", y);
        using var table = Filled(5, 4);
        Rejects<ArgumentOutOfRangeException>(() => Elementwise.EmbeddingGather([1, 5, 0], table, y), "tokens", y, "0..4");
        Rejects<ArgumentException>(() => Elementwise.EmbeddingGather([1, 2], table, y), "output", y, "[2, 4]", "[3, 4]");
        Rejects<ArgumentOutOfRangeException>(() => Elementwise.ScaleActivate(x, 1f, (Activation)9, y), "activation", y);
    }

    [Fact]
    public void DeviceSelectionErrorsNameWhatIsAvailable()
    {
        var present = ComputeDevice.ListDevices().Select(d => d.Kind).ToHashSet();
        var missing = new[] { DeviceKind.Cuda, DeviceKind.OpenCL }.Where(k => !present.Contains(k)).ToList();
        foreach (var kind in missing)
        {
            var e = Assert.Throws<InvalidOperationException>(() => ComputeDevice.Create(kind));
            Assert.Contains("cpu", e.Message);
        }
        string? saved = Environment.GetEnvironmentVariable(ComputeDevice.EnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(ComputeDevice.EnvironmentVariable, "tpu");
            var e = Assert.Throws<ArgumentException>(() => ComputeDevice.Create());
            Assert.Equal(ComputeDevice.EnvironmentVariable, e.ParamName);
            Assert.Contains("cuda, opencl, cpu, cpu-accelerator", e.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable(ComputeDevice.EnvironmentVariable, saved);
        }
        Assert.Throws<ArgumentException>(() => ComputeDevice.Create(DeviceKind.CpuAccelerator, LaunchProfile.Gpu with { AttentionGroupSize = 96 }));
        var managed = Assert.Throws<ArgumentException>(() => ComputeDevice.Create(DeviceKind.ManagedCpu, LaunchProfile.Gpu));
        Assert.Equal("profile", managed.ParamName);
    }
}
