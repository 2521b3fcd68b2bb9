using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using GpuAttention.Problems;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// The managed fused masked softmax, same contract as <see cref="SoftmaxKernels.MaskedSoftmax"/>: rows of x viewed as
/// [batch, heads, Lq, Lk], y = softmax(scale·x + mask) (or the ReLU normaliser), zeros for hidden keys and for rows
/// with none visible, NaN in a visible score spreading over the row's visible weights. y may be x.
/// </summary>
public static unsafe class CpuSoftmax
{
    /// <summary>Normalises every row; rows are spread over the cores.</summary>
    public static void MaskedSoftmax(CpuExecution execution, float* x, float* y, HostMask mask, SoftmaxProblem p)
    {
        int rows = checked((int)p.Rows);
        int rowsPerTask = Math.Max(1, (1 << 16) / p.Lk);
        int tasks = (int)(((long)rows + rowsPerTask - 1) / rowsPerTask);
        nint xAddress = (nint)x, yAddress = (nint)y;
        execution.For(tasks, task =>
        {
            using var scores = execution.Rent(ScratchSlot.Tile, p.Lk);
            int end = (int)Math.Min(rows, (task + 1L) * rowsPerTask);
            for (int row = task * rowsPerTask; row < end; row++)
                Row((float*)xAddress, (float*)yAddress, scores.Pointer, mask, p, row);
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Row(float* x, float* y, float* scores, HostMask mask, SoftmaxProblem p, int row)
    {
        int i = row % p.Lq, head = row / p.Lq % p.Heads, batch = row / p.Lq / p.Heads;
        long offset = (long)row * p.Lk;
        var (begin, end) = mask.VisibleKeys(batch, i, p.Lq, p.Lk);
        int count = Math.Max(0, end - begin);
        float* source = x + offset + begin;
        float* additive = mask.AdditiveRow(batch, head, i, p.Lk);
        if (additive != null)
            additive += begin;
        float max = ScaleAndMax(source, additive, p.Scale, scores, count, out bool nan);

        float* target = y + offset;
        new Span<float>(target, begin < 0 ? 0 : Math.Min(begin, p.Lk)).Clear();
        if (end < p.Lk)
            new Span<float>(target + Math.Max(end, 0), p.Lk - Math.Max(end, 0)).Clear();
        if (count == 0)
            return;
        target += begin;
        if (nan)
        {
            new Span<float>(target, count).Fill(float.NaN);
            return;
        }
        if (p.Normalizer == (int)ScoreNormalizer.Relu)
        {
            int visible = 0;
            for (int j = 0; j < count; j++)
                visible += scores[j] == float.NegativeInfinity ? 0 : 1;
            float share = visible == 0 ? 0f : 1f / visible;
            for (int j = 0; j < count; j++)
                target[j] = scores[j] == float.NegativeInfinity ? 0f : ActivationMath.Relu(scores[j]) * share;
            return;
        }
        if (max == float.NegativeInfinity)
        {
            new Span<float>(target, count).Clear();
            return;
        }
        float sum = CpuVector.ExpShifted(scores, max, count);
        CpuVector.Scale(scores, 1f / sum, target, count);
    }

    /// <summary>s[j] = scale·x[j] + additive[j]; returns max s and whether any s is NaN.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float ScaleAndMax(float* x, float* additive, float scale, float* s, int count, out bool nan)
    {
        int j = 0;
        float max = float.NegativeInfinity;
        nan = false;
        if (CpuFeatures.Vector256Paths && count >= 8)
        {
            var scaleVector = Vector256.Create(scale);
            var maxVector = Vector256.Create(float.NegativeInfinity);
            var nanVector = Vector256<float>.Zero;
            for (; j + 8 <= count; j += 8)
            {
                var value = Vector256.Load(x + j) * scaleVector;
                if (additive != null)
                    value += Vector256.Load(additive + j);
                value.Store(s + j);
                maxVector = Vector256.Max(maxVector, value);
                nanVector |= ~Vector256.Equals(value, value);
            }
            max = CpuVector.Max(maxVector);
            nan = nanVector != Vector256<float>.Zero;
        }
        for (; j < count; j++)
        {
            float value = x[j] * scale + (additive != null ? additive[j] : 0f);
            s[j] = value;
            max = MathF.Max(max, value);
            nan |= float.IsNaN(value);
        }
        return max;
    }
}
