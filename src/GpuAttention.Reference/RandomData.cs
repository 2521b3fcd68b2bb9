namespace GpuAttention.Reference;

/// <summary>Deterministic test and benchmark inputs: the same seed gives the same values everywhere.</summary>
public static class RandomData
{
    /// <summary><paramref name="count"/> values uniform in [−magnitude, magnitude) from <paramref name="seed"/>.</summary>
    public static float[] Uniform(int count, int seed, float magnitude = 1f)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (int i = 0; i < count; i++)
            values[i] = (float)(random.NextDouble() * 2 - 1) * magnitude;
        return values;
    }
}
