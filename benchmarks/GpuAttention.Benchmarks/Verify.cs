namespace GpuAttention.Benchmarks;

/// <summary>The correctness gate every benchmark passes in its setup, before anything is timed.</summary>
public static class Verify
{
    /// <summary>Largest allowed |actual − expected| / max(1, |expected|).</summary>
    public const double Tolerance = 1e-3;

    /// <summary>Uniform values in [−1, 1) from a fixed seed.</summary>
    public static float[] RandomData(int count, int seed)
    {
        var random = new Random(seed);
        var data = new float[count];
        for (int i = 0; i < count; i++)
            data[i] = (float)(random.NextDouble() * 2 - 1);
        return data;
    }

    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<double> expected, string what)
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

    public static void Close(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, string what)
    {
        var widened = new double[expected.Length];
        for (int i = 0; i < expected.Length; i++)
            widened[i] = expected[i];
        Close(actual, widened, what);
    }
}
