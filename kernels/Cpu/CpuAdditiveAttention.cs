using GpuAttention.Problems;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// The managed additive attention, same contract as <see cref="AttentionKernels.FlashForward"/> with
/// <see cref="AdditiveScore"/>: O = normalise(Σₐ wₐ·tanh(q'ₐ + k'ₐ) + mask)·V over projected rows, without an Lq×Lk
/// buffer. One task per query row; its visible keys are streamed <see cref="KeyTile"/> at a time with an online softmax
/// (or the ReLU normaliser's count), each score vectorised over the projected width (<see cref="CpuVector.AdditiveScore"/>:
/// the tanh, not a product, is the cost here). Fully masked rows get zeros and a −∞ log-sum-exp; NaN spreads over its row.
/// </summary>
public static unsafe class CpuAdditiveAttention
{
    /// <summary>Keys per streamed step: the scratch a row holds, whatever Lk is.</summary>
    public const int KeyTile = 64;

    /// <summary>Runs every row; returns when O (and the log-sum-exp, when <paramref name="logSumExp"/> is not null) is written.</summary>
    public static void FlashForward(CpuExecution execution, float* projectedQ, float* projectedK, float* v, float* scoreVector,
        float* o, float* logSumExp, HostMask mask, AttentionProblem p)
    {
        nint qAddress = (nint)projectedQ, kAddress = (nint)projectedK, vAddress = (nint)v, wAddress = (nint)scoreVector;
        nint oAddress = (nint)o, lseAddress = (nint)logSumExp;
        execution.For(checked(p.BatchHeads * p.Lq), task =>
            QueryRow(execution, (float*)qAddress, (float*)kAddress, (float*)vAddress, (float*)wAddress, (float*)oAddress,
                (float*)lseAddress, mask, p, task / p.Lq, task % p.Lq), execution.Worthwhile(p.MultiplyAdds));
    }

    /// <summary>The unfused baseline's scores: S [batch·heads·Lq, Lk], unmasked.</summary>
    public static void Scores(CpuExecution execution, float* projectedQ, float* projectedK, float* scoreVector, float* scores,
        AttentionProblem p)
    {
        nint qAddress = (nint)projectedQ, kAddress = (nint)projectedK, wAddress = (nint)scoreVector, sAddress = (nint)scores;
        int width = p.HeadDim;
        execution.For(checked(p.BatchHeads * p.Lq), row =>
        {
            float* query = (float*)qAddress + (long)row * width;
            float* keys = (float*)kAddress + (long)(row / p.Lq) * p.Lk * width;
            float* target = (float*)sAddress + (long)row * p.Lk;
            for (int j = 0; j < p.Lk; j++)
                target[j] = CpuVector.AdditiveScore(query, keys + (long)j * width, (float*)wAddress, width);
        }, execution.Worthwhile((long)p.BatchHeads * p.Lq * p.Lk * width));
    }

    private static void QueryRow(CpuExecution execution, float* projectedQ, float* projectedK, float* v, float* scoreVector,
        float* o, float* logSumExp, HostMask mask, AttentionProblem p, int headIndex, int i)
    {
        int width = p.HeadDim, dv = p.ValueDim, head = headIndex % p.Heads, batch = headIndex / p.Heads;
        bool relu = p.Normalizer == (int)ScoreNormalizer.Relu;
        using var scratch = execution.Rent(ScratchSlot.Tile, KeyTile + (long)dv);
        float* scores = scratch.Pointer;
        float* output = scores + KeyTile;
        new Span<float>(output, dv).Clear();
        float* query = projectedQ + ((long)headIndex * p.Lq + i) * width;
        float* keys = projectedK + (long)headIndex * p.KeyCapacity * width;
        float* values = v + (long)headIndex * p.KeyCapacity * dv;
        float* additive = mask.AdditiveRow(batch, head, i, p.Lk);
        var (begin, end) = mask.VisibleKeys(batch, i, p.Lq, p.Lk);
        float runningMax = float.NegativeInfinity, runningSum = 0f;
        bool nan = false;
        for (int k0 = begin; k0 < end; k0 += KeyTile)
        {
            int count = Math.Min(KeyTile, end - k0);
            for (int j = 0; j < count; j++)
            {
                float s = CpuVector.AdditiveScore(query, keys + (long)(k0 + j) * width, scoreVector, width);
                if (additive != null)
                    s += additive[k0 + j];
                scores[j] = s;
                nan |= float.IsNaN(s);
            }
            if (relu)
            {
                for (int j = 0; j < count; j++)
                {
                    runningSum += scores[j] == float.NegativeInfinity ? 0f : 1f;
                    scores[j] = ActivationMath.Relu(scores[j]);
                }
            }
            else
            {
                float tileMax = float.NegativeInfinity;
                for (int j = 0; j < count; j++)
                    tileMax = MathF.Max(tileMax, scores[j]);
                float newMax = MathF.Max(runningMax, tileMax);
                if (newMax == float.NegativeInfinity)
                    continue;
                float rescale = MathF.Exp(runningMax - newMax);
                CpuVector.Scale(output, rescale, output, dv);
                runningSum = runningSum * rescale + CpuVector.ExpShifted(scores, newMax, count);
                runningMax = newMax;
            }
            for (int j = 0; j < count; j++)
                CpuVector.AddScaled(output, scores[j], values + (long)(k0 + j) * dv, dv);
        }

        float* row = o + ((long)headIndex * p.Lq + i) * dv;
        if (nan)
            new Span<float>(row, dv).Fill(float.NaN);
        else
            CpuVector.Scale(output, runningSum == 0f ? 0f : 1f / runningSum, row, dv);
        if (logSumExp != null)
            logSumExp[(long)headIndex * p.Lq + i] = nan ? float.NaN
                : runningSum == 0f ? float.NegativeInfinity : runningMax + MathF.Log(runningSum);
    }
}
