namespace GpuAttention.Benchmarks;

/// <summary>The agreement gate of the ONNX Runtime comparisons: both engines' outputs, before anything is timed.</summary>
public static class Verify
{
    /// <summary>Largest allowed |actual − expected| / max(1, |expected|).</summary>
    public const double Tolerance = 1e-3;

    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, string what)
    {
        if (actual.Length != expected.Length)
            throw new InvalidOperationException($"{what}: {actual.Length} values, expected {expected.Length}.");
        for (int i = 0; i < actual.Length; i++)
        {
            double error = Math.Abs(actual[i] - expected[i]) / Math.Max(1.0, Math.Abs(expected[i]));
            if (!(error <= Tolerance))
                throw new InvalidOperationException(
                    $"{what} disagrees at element {i}: got {actual[i]}, expected {expected[i]} (relative error {error:E2} > {Tolerance:E0}). Not timing wrong results.");
        }
    }
}
