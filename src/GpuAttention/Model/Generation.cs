using GpuAttention.Runtime;

namespace GpuAttention.Model;

/// <summary>Autoregressive decoding: y₁, then y₂ given y₁, …, greedily or by beam search.</summary>
public static class Generation
{
    /// <summary>
    /// Greedy decoding of each source row: start from bos, append the most likely token until eos or
    /// <paramref name="maxNewTokens"/>. Returns each row's emitted tokens (eos included when emitted). With
    /// <paramref name="useCache"/> each step attends over cached keys and values (Lq = 1); without it, each
    /// step re-runs the decoder over the whole prefix.
    /// </summary>
    public static int[][] Greedy(Transformer model, int[][] source, int[] lengths, int maxNewTokens, bool useCache = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxNewTokens, 1);
        var config = model.Config;
        if (maxNewTokens >= config.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(maxNewTokens), maxNewTokens,
                $"Argument 'maxNewTokens' must be in 1..{config.MaxLength - 1}: bos plus the new tokens must fit max_len {config.MaxLength}.");
        using var memory = model.Encode(source, lengths);
        int batch = source.Length;
        var emitted = Enumerable.Range(0, batch).Select(_ => new List<int>()).ToArray();
        var finished = new bool[batch];
        var last = Enumerable.Repeat(config.BosId, batch).ToArray();
        var caches = useCache ? model.CreateCaches(memory, maxNewTokens + 1) : null;
        try
        {
            for (int position = 0; position < maxNewTokens && !finished.All(f => f); position++)
            {
                float[] logits = useCache
                    ? StepLogits(model, last, position, caches!, lengths)
                    : PrefixLogits(model, emitted, memory, lengths);
                int vocab = config.TargetVocabulary;
                for (int b = 0; b < batch; b++)
                {
                    int next = ArgMax(logits.AsSpan(b * vocab, vocab));
                    last[b] = next;
                    if (finished[b])
                        continue;
                    emitted[b].Add(next);
                    finished[b] = next == config.EosId;
                }
            }
        }
        finally
        {
            if (caches is not null)
                foreach (var cache in caches)
                    cache.Dispose();
        }
        return emitted.Select(e => e.ToArray()).ToArray();
    }

    /// <summary>
    /// Beam search over one source sequence: keeps the <paramref name="beamWidth"/> most likely prefixes and moves a
    /// prefix that emits eos to the finished set. Hypotheses are ranked by log-probability / length^<paramref name="lengthPenalty"/>;
    /// the search stops after <paramref name="maxNewTokens"/>, or once <paramref name="beamWidth"/> hypotheses have finished
    /// and no live prefix ranks above the worst of them (with no length penalty a prefix's log-probability only falls as
    /// it grows, so the best finished hypothesis is then final).
    /// Returns the best hypothesis' tokens (eos included when emitted). Beam width 1 is greedy decoding.
    /// </summary>
    public static int[] Beam(Transformer model, int[] source, int beamWidth, int maxNewTokens, float lengthPenalty = 1f)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentOutOfRangeException.ThrowIfLessThan(beamWidth, 1);
        if (beamWidth > model.MaxBatch)
            throw new ArgumentOutOfRangeException(nameof(beamWidth), beamWidth,
                $"Argument 'beamWidth' must be in 1..{model.MaxBatch}: the beams run as one batch of at most {model.MaxBatch} rows for this model's {model.Config.Heads} heads.");
        ArgumentOutOfRangeException.ThrowIfLessThan(maxNewTokens, 1);
        if (!float.IsFinite(lengthPenalty) || lengthPenalty < 0)
            throw new ArgumentOutOfRangeException(nameof(lengthPenalty), lengthPenalty, "The length penalty must be finite and ≥ 0.");
        var config = model.Config;
        if (maxNewTokens >= config.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(maxNewTokens), maxNewTokens,
                $"Argument 'maxNewTokens' must be in 1..{config.MaxLength - 1}: bos plus the new tokens must fit max_len {config.MaxLength}.");
        var sourceRows = Enumerable.Repeat(source, beamWidth).ToArray();
        var lengths = Enumerable.Repeat(source.Length, beamWidth).ToArray();
        using var memory = model.Encode(sourceRows, lengths);
        var caches = model.CreateCaches(memory, maxNewTokens + 1);
        try
        {
            // Only beam 0 is live at first, so the identical start is not expanded beamWidth times.
            var beams = Enumerable.Range(0, beamWidth)
                .Select(i => new Hypothesis([], i == 0 ? 0.0 : double.NegativeInfinity)).ToList();
            var done = new List<Hypothesis>();
            int vocab = config.TargetVocabulary;
            for (int position = 0; position < maxNewTokens && !Settled(beams, done, beamWidth, lengthPenalty); position++)
            {
                var last = beams.Select(h => h.Tokens.Length == 0 ? config.BosId : h.Tokens[^1]).ToArray();
                var logits = StepLogits(model, last, position, caches, lengths);
                var candidates = new List<(int Beam, int Token, double Score)>();
                for (int w = 0; w < beamWidth; w++)
                {
                    if (double.IsNegativeInfinity(beams[w].Score))
                        continue;
                    var logProbabilities = LogSoftmax(logits.AsSpan(w * vocab, vocab));
                    for (int t = 0; t < vocab; t++)
                        candidates.Add((w, t, beams[w].Score + logProbabilities[t]));
                }
                var next = new List<Hypothesis>();
                var sources = new List<int>();
                foreach (var (w, token, score) in candidates.OrderByDescending(c => c.Score).ThenBy(c => c.Beam).ThenBy(c => c.Token))
                {
                    if (next.Count == beamWidth)
                        break;
                    var tokens = (int[])[.. beams[w].Tokens, token];
                    if (token != config.EosId)
                    {
                        next.Add(new Hypothesis(tokens, score));
                        sources.Add(w);
                    }
                    else
                        done.Add(new Hypothesis(tokens, score));
                }
                while (next.Count < beamWidth)
                {
                    next.Add(new Hypothesis([], double.NegativeInfinity));
                    sources.Add(0);
                }
                foreach (var cache in caches)
                    cache.Reorder(sources.ToArray());
                beams = next;
            }
            var pool = done.Count > 0 ? done : beams.Where(b => !double.IsNegativeInfinity(b.Score)).ToList();
            return pool.OrderByDescending(h => h.Ranking(lengthPenalty)).First().Tokens;
        }
        finally
        {
            foreach (var cache in caches)
                cache.Dispose();
        }
    }

    private sealed record Hypothesis(int[] Tokens, double Score)
    {
        public double Ranking(float lengthPenalty) => Score / Math.Pow(Math.Max(Tokens.Length, 1), lengthPenalty);
    }

    private static bool Settled(List<Hypothesis> live, List<Hypothesis> done, int beamWidth, float lengthPenalty)
    {
        if (done.Count < beamWidth)
            return false;
        double worstKept = done.Select(h => h.Ranking(lengthPenalty)).OrderDescending().Take(beamWidth).Min();
        double bestLive = live.Where(h => !double.IsNegativeInfinity(h.Score)).Select(h => h.Ranking(lengthPenalty)).DefaultIfEmpty(double.NegativeInfinity).Max();
        return bestLive <= worstKept;
    }

    private static float[] StepLogits(Transformer model, int[] tokens, int position, LayerCache[] caches, int[] lengths)
    {
        using var logits = model.DecodeStep(tokens, position, caches, lengths);
        return logits.ToArray();
    }

    /// <summary>Logits of the last position after running the decoder over bos + each row's tokens so far.</summary>
    private static float[] PrefixLogits(Transformer model, List<int>[] emitted, DeviceTensor memory, int[] lengths)
    {
        var config = model.Config;
        int steps = emitted.Max(e => e.Count);
        // Rows that finished early are padded with eos; their positions after it are ignored.
        var target = emitted.Select(e => new[] { config.BosId }.Concat(e).Concat(Enumerable.Repeat(config.EosId, steps - e.Count)).ToArray()).ToArray();
        using var output = model.Decode(target, memory, lengths);
        using var logits = model.Logits(output);
        var all = logits.ToArray();
        int vocab = config.TargetVocabulary, length = steps + 1;
        var last = new float[emitted.Length * vocab];
        for (int b = 0; b < emitted.Length; b++)
            Array.Copy(all, ((long)b * length + length - 1) * vocab, last, (long)b * vocab, vocab);
        return last;
    }

    /// <summary>The index of the largest value (the first, on ties): the greedy choice among logits.</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
                best = i;
        }
        return best;
    }

    private static double[] LogSoftmax(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (float l in logits)
            max = Math.Max(max, l);
        double sum = 0;
        foreach (float l in logits)
            sum += Math.Exp(l - max);
        double log = max + Math.Log(sum);
        var result = new double[logits.Length];
        for (int i = 0; i < logits.Length; i++)
            result[i] = logits[i] - log;
        return result;
    }
}
