namespace GpuAttention.Reference;

/// <summary>Double-precision, obviously-correct implementations every kernel is checked against.</summary>
public static class ReferenceOps
{
    public static double Gelu(double x) => 0.5 * x * (1.0 + Erf(x / Math.Sqrt(2.0)));

    public static double Relu(double x) => double.IsNaN(x) ? x : Math.Max(0.0, x);

    /// <summary>erf by its Maclaurin series (|x| ≤ 3) or continued fraction tail; accurate to ~1e-12.</summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return x;
        double ax = Math.Abs(x);
        if (ax > 6) return Math.Sign(x);
        if (ax <= 3)
        {
            double sum = 0, term = ax;
            for (int n = 0; n < 200; n++)
            {
                sum += term / (2 * n + 1);
                term *= -ax * ax / (n + 1);
            }
            return Math.Sign(x) * 2 / Math.Sqrt(Math.PI) * sum;
        }
        double fraction = 0;
        for (int n = 60; n >= 1; n--)
            fraction = n / 2.0 / (ax + fraction);
        double erfc = Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / (ax + fraction);
        return Math.Sign(x) * (1 - erfc);
    }

    public static double Activate(double x, string activation) => activation switch
    {
        "relu" => Relu(x),
        "gelu" => Gelu(x),
        "gelu_tanh" => 0.5 * x * (1.0 + Math.Tanh(Math.Sqrt(2.0 / Math.PI) * (x + 0.044715 * x * x * x))),
        _ => x,
    };

    /// <summary>C[b] = act(alpha·op(A[b])·op(B[b]) + beta·C[b] + bias); a null batch stride broadcasts.</summary>
    public static double[] MatMul(float[] a, float[] b, float[]? c, int batch, int m, int n, int k,
        bool transA, bool transB, bool aBatched, bool bBatched, double alpha = 1, double beta = 0,
        float[]? bias = null, string activation = "none")
    {
        var result = new double[batch * m * n];
        for (int t = 0; t < batch; t++)
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double dot = 0;
            for (int p = 0; p < k; p++)
            {
                double av = transA ? a[(aBatched ? t * m * k : 0) + p * m + i] : a[(aBatched ? t * m * k : 0) + i * k + p];
                double bv = transB ? b[(bBatched ? t * k * n : 0) + j * k + p] : b[(bBatched ? t * k * n : 0) + p * n + j];
                dot += av * bv;
            }
            double value = alpha * dot;
            if (beta != 0) value += beta * c![(t * m + i) * n + j];
            if (bias is not null) value += bias[j];
            result[(t * m + i) * n + j] = Activate(value, activation);
        }
        return result;
    }

    /// <summary>Masked softmax (or ReLU normaliser) of rows of x viewed as [batch, heads, lq, lk].</summary>
    public static double[] Softmax(float[] x, int batch, int heads, int lq, int lk, ReferenceMask mask, double scale,
        bool reluNormalizer = false)
    {
        var y = new double[x.Length];
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        for (int i = 0; i < lq; i++)
        {
            int row = ((b * heads + h) * lq + i) * lk;
            var scores = new double[lk];
            var visible = new bool[lk];
            for (int j = 0; j < lk; j++)
            {
                scores[j] = scale * x[row + j] + mask.AdditiveAt(b, h, i, j);
                visible[j] = mask.Visible(b, i, j, lq, lk) && !double.IsNegativeInfinity(scores[j]);
            }
            if (reluNormalizer)
            {
                int count = visible.Count(v => v);
                for (int j = 0; j < lk; j++)
                    y[row + j] = visible[j] ? Relu(scores[j]) / count : 0;
                continue;
            }
            double max = double.NegativeInfinity;
            bool anyNaN = false;
            for (int j = 0; j < lk; j++)
            {
                if (!visible[j]) continue;
                if (double.IsNaN(scores[j])) anyNaN = true;
                else max = Math.Max(max, scores[j]);
            }
            double sum = 0;
            for (int j = 0; j < lk; j++)
                if (visible[j]) sum += Math.Exp(scores[j] - max);
            for (int j = 0; j < lk; j++)
                y[row + j] = !visible[j] ? 0 : anyNaN ? double.NaN : Math.Exp(scores[j] - max) / sum;
        }
        return y;
    }

    /// <summary>
    /// softmax(scale·Q·Kᵀ + mask)·V per (batch, head), plus the log-sum-exp of each row; with
    /// <paramref name="reluNormalizer"/>, ReLU(score) / (visible keys) in place of the softmax.
    /// </summary>
    public static (double[] Output, double[] LogSumExp) Attention(float[] q, float[] k, float[] v, int batch, int heads,
        int lq, int lk, int d, ReferenceMask mask, double scale, bool reluNormalizer = false) =>
        Attend(v, batch, heads, lq, lk, d, mask, reluNormalizer, (pair, i, j) =>
        {
            double dot = 0;
            for (int c = 0; c < d; c++)
                dot += (double)q[(pair * lq + i) * d + c] * k[(pair * lk + j) * d + c];
            return scale * dot;
        });

    /// <summary>
    /// Additive attention per (batch, head): score(i, j) = Σₐ w[a]·tanh(q'[i, a] + k'[j, a]) with q' = q·W_q [dq, da] and
    /// k' = k·W_k [dk, da] made in double precision, then the mask and the softmax (or the ReLU normaliser) and the
    /// weighted sum of v [.., lk, dv].
    /// </summary>
    public static (double[] Output, double[] LogSumExp) AdditiveAttention(float[] q, float[] k, float[] v, float[] wq, float[] wk,
        float[] w, int batch, int heads, int lq, int lk, int dq, int dk, int dv, int da, ReferenceMask mask, bool reluNormalizer = false)
    {
        double[] Project(float[] x, float[] weight, int rows, int inner)
        {
            var result = new double[rows * da];
            for (int r = 0; r < rows; r++)
            for (int a = 0; a < da; a++)
            {
                double sum = 0;
                for (int c = 0; c < inner; c++)
                    sum += (double)x[r * inner + c] * weight[c * da + a];
                result[r * da + a] = sum;
            }
            return result;
        }
        var projectedQ = Project(q, wq, batch * heads * lq, dq);
        var projectedK = Project(k, wk, batch * heads * lk, dk);
        return Attend(v, batch, heads, lq, lk, dv, mask, reluNormalizer, (pair, i, j) =>
        {
            double score = 0;
            for (int a = 0; a < da; a++)
                score += w[a] * Math.Tanh(projectedQ[(pair * lq + i) * da + a] + projectedK[(pair * lk + j) * da + a]);
            return score;
        });
    }

    /// <summary>
    /// normalise(score + mask)·V for every (batch·head pair, i), given the unmasked score of (pair, i, j). A hidden key (by
    /// the rules, or −∞ in the additive mask) weighs 0; a row with no visible key is zeros with a −∞ log-sum-exp; a NaN
    /// score makes its row NaN.
    /// </summary>
    private static (double[] Output, double[] LogSumExp) Attend(float[] v, int batch, int heads, int lq, int lk, int dv,
        ReferenceMask mask, bool reluNormalizer, Func<int, int, int, double> score)
    {
        var output = new double[batch * heads * lq * dv];
        var lse = new double[batch * heads * lq];
        for (int b = 0; b < batch; b++)
        for (int h = 0; h < heads; h++)
        {
            int pair = b * heads + h;
            for (int i = 0; i < lq; i++)
            {
                var scores = new double[lk];
                for (int j = 0; j < lk; j++)
                    scores[j] = mask.Visible(b, i, j, lq, lk) ? score(pair, i, j) + mask.AdditiveAt(b, h, i, j) : double.NegativeInfinity;
                var weights = new double[lk];
                if (reluNormalizer)
                {
                    int count = scores.Count(s => !double.IsNegativeInfinity(s));
                    for (int j = 0; j < lk; j++)
                        weights[j] = double.IsNegativeInfinity(scores[j]) ? 0 : Relu(scores[j]) / count;
                    lse[pair * lq + i] = double.NaN;
                }
                else
                {
                    double max = double.NegativeInfinity;
                    foreach (double s in scores)
                        max = Math.Max(max, s);   // NaN wins: a NaN score makes its row NaN
                    double sum = 0;
                    for (int j = 0; j < lk; j++)
                        if (!double.IsNegativeInfinity(scores[j])) sum += Math.Exp(scores[j] - max);
                    for (int j = 0; j < lk; j++)
                        weights[j] = double.IsNegativeInfinity(scores[j]) ? 0 : Math.Exp(scores[j] - max) / sum;
                    lse[pair * lq + i] = sum == 0 ? double.NegativeInfinity : max + Math.Log(sum);
                }
                for (int c = 0; c < dv; c++)
                {
                    double acc = 0;
                    for (int j = 0; j < lk; j++)
                        acc += weights[j] * v[(pair * lk + j) * dv + c];
                    output[(pair * lq + i) * dv + c] = acc;
                }
            }
        }
        return (output, lse);
    }

    /// <summary>
    /// BERT's embeddings: row r = LayerNorm(words[wordIds[r]] + positions[positionIds[r]] + types[typeIds[r]])·gain + bias,
    /// the sum and the norm in double precision.
    /// </summary>
    public static double[] EmbeddingLayerNorm(float[] words, float[] positions, float[] types, int[] wordIds, int[] positionIds, int[] typeIds,
        float[] gain, float[] bias, int width, double epsilon)
    {
        var y = new double[wordIds.Length * width];
        for (int r = 0; r < wordIds.Length; r++)
        {
            var z = new double[width];
            for (int j = 0; j < width; j++)
                z[j] = (double)words[wordIds[r] * width + j] + positions[positionIds[r] * width + j] + types[typeIds[r] * width + j];
            double mean = z.Average();
            double variance = z.Select(v => (v - mean) * (v - mean)).Average();
            for (int j = 0; j < width; j++)
                y[r * width + j] = (z[j] - mean) / Math.Sqrt(variance + epsilon) * gain[j] + bias[j];
        }
        return y;
    }

    /// <summary>LayerNorm(x + residual)·gain + bias over rows of width w, with the biased variance.</summary>
    public static double[] LayerNorm(float[] x, float[]? residual, float[] gain, float[] bias, int width, double epsilon)
    {
        var y = new double[x.Length];
        for (int r = 0; r < x.Length / width; r++)
        {
            var z = new double[width];
            for (int j = 0; j < width; j++)
                z[j] = (double)x[r * width + j] + (residual is null ? 0.0 : residual[r * width + j]);
            double mean = z.Average();
            double variance = z.Select(v => (v - mean) * (v - mean)).Average();
            for (int j = 0; j < width; j++)
                y[r * width + j] = (z[j] - mean) / Math.Sqrt(variance + epsilon) * gain[j] + bias[j];
        }
        return y;
    }

    /// <summary>
    /// A post-LN ReLU encoder layer over x [L, d] with PyTorch TransformerEncoderLayer's weights, by name, and no dropout:
    /// h = LN1(x + SelfAttention(x)), y = LN2(h + W2·ReLU(W1·h + b1) + b2), composed from the ops above (each step's input
    /// rounded to float, as the next op takes floats).
    /// </summary>
    public static double[] EncoderLayer(float[] x, IReadOnlyDictionary<string, float[]> weights, int length, int dModel, int heads,
        int dFeedForward, double epsilon, string activation = "relu")
    {
        int headDim = dModel / heads;
        static float[] Floats(double[] values) => Array.ConvertAll(values, v => (float)v);
        double[] Linear(float[] input, string name, int outputs, int inputs, string activation = "none") =>
            MatMul(input, weights[name + ".weight"], null, 1, length, outputs, inputs, transA: false, transB: true,
                aBatched: false, bBatched: false, bias: weights[name + ".bias"], activation: activation);

        double[] qkv = MatMul(x, weights["self_attn.in_proj_weight"], null, 1, length, 3 * dModel, dModel, transA: false, transB: true,
            aBatched: false, bBatched: false, bias: weights["self_attn.in_proj_bias"]);
        float[] Head(int part)
        {
            var split = new float[heads * length * headDim];
            for (int h = 0; h < heads; h++)
            for (int i = 0; i < length; i++)
            for (int c = 0; c < headDim; c++)
                split[(h * length + i) * headDim + c] = (float)qkv[i * 3 * dModel + part * dModel + h * headDim + c];
            return split;
        }
        var (attended, _) = Attention(Head(0), Head(1), Head(2), 1, heads, length, length, headDim, new ReferenceMask(), 1 / Math.Sqrt(headDim));
        var merged = new float[length * dModel];
        for (int h = 0; h < heads; h++)
        for (int i = 0; i < length; i++)
        for (int c = 0; c < headDim; c++)
            merged[i * dModel + h * headDim + c] = (float)attended[(h * length + i) * headDim + c];

        float[] afterAttention = Floats(LayerNorm(x, Floats(Linear(merged, "self_attn.out_proj", dModel, dModel)),
            weights["norm1.weight"], weights["norm1.bias"], dModel, epsilon));
        double[] inner = Linear(afterAttention, "linear1", dFeedForward, dModel, activation);
        double[] outer = Linear(Floats(inner), "linear2", dModel, dFeedForward);
        return LayerNorm(afterAttention, Floats(outer), weights["norm2.weight"], weights["norm2.bias"], dModel, epsilon);
    }

    /// <summary>
    /// A BERT encoder's last hidden states for one sequence of <paramref name="tokens"/> (token type 0), from Hugging Face's
    /// tensor names: the embeddings (<see cref="EmbeddingLayerNorm"/>), then each post-LN layer as <see cref="EncoderLayer"/>
    /// with exact-erf GELU, its query/key/value weights stacked as PyTorch's in_proj_weight → [tokens, d].
    /// </summary>
    public static double[] Bert(int[] tokens, IReadOnlyDictionary<string, float[]> weights, int dModel, int heads, int dFeedForward,
        int layers, double epsilon)
    {
        int length = tokens.Length;
        var x = Array.ConvertAll(EmbeddingLayerNorm(weights["embeddings.word_embeddings.weight"], weights["embeddings.position_embeddings.weight"],
            weights["embeddings.token_type_embeddings.weight"], tokens, [.. Enumerable.Range(0, length)], new int[length],
            weights["embeddings.LayerNorm.weight"], weights["embeddings.LayerNorm.bias"], dModel, epsilon), v => (float)v);
        double[] y = [];
        for (int layer = 0; layer < layers; layer++)
        {
            string prefix = $"encoder.layer.{layer}.";
            float[] Stacked(string suffix) =>
                [.. new[] { "query", "key", "value" }.SelectMany(part => weights[$"{prefix}attention.self.{part}.{suffix}"])];
            var renamed = new Dictionary<string, float[]>
            {
                ["self_attn.in_proj_weight"] = Stacked("weight"),
                ["self_attn.in_proj_bias"] = Stacked("bias"),
                ["self_attn.out_proj.weight"] = weights[prefix + "attention.output.dense.weight"],
                ["self_attn.out_proj.bias"] = weights[prefix + "attention.output.dense.bias"],
                ["norm1.weight"] = weights[prefix + "attention.output.LayerNorm.weight"],
                ["norm1.bias"] = weights[prefix + "attention.output.LayerNorm.bias"],
                ["linear1.weight"] = weights[prefix + "intermediate.dense.weight"],
                ["linear1.bias"] = weights[prefix + "intermediate.dense.bias"],
                ["linear2.weight"] = weights[prefix + "output.dense.weight"],
                ["linear2.bias"] = weights[prefix + "output.dense.bias"],
                ["norm2.weight"] = weights[prefix + "output.LayerNorm.weight"],
                ["norm2.bias"] = weights[prefix + "output.LayerNorm.bias"],
            };
            y = EncoderLayer(x, renamed, length, dModel, heads, dFeedForward, epsilon, "gelu");
            x = Array.ConvertAll(y, v => (float)v);
        }
        return y;
    }

    /// <summary>PE(pos, 2i) = sin(pos/10000^(2i/d)), PE(pos, 2i+1) = cos(pos/10000^(2i/d)).</summary>
    public static double PositionalEncoding(int position, int column, int width)
    {
        int pair = column / 2;
        double angle = position / Math.Pow(10000.0, 2.0 * pair / width);
        return column % 2 == 0 ? Math.Sin(angle) : Math.Cos(angle);
    }
}
