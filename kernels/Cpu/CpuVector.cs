using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace GpuAttention.Kernels.Cpu;

/// <summary>
/// The vector primitives every managed kernel calls down into — fused multiply-add, dot, axpy, scale, exp, reductions,
/// activations — so no kernel file borrows helpers from a sibling. Vector256 (AVX2+FMA) paths where the CPU has them
/// (<see cref="CpuFeatures.Vector256Paths"/>), scalar loops for the rest and for the tails.
/// </summary>
public static unsafe class CpuVector
{
    private const float Log2E = 1.44269504088896341f;
    private const float Ln2High = 0.693359375f;
    private const float Ln2Low = -2.12194440e-4f;
    private const float ExpUnderflow = -87.33654f;
    private const float ExpOverflow = 88.72283f;

    /// <summary>a·b + c, one instruction where the CPU has FMA.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    /// <summary>a·b + c (AVX-512 always has FMA).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
        Avx512F.IsSupported ? Avx512F.FusedMultiplyAdd(a, b, c) : a * b + c;

    /// <summary>
    /// e^x per lane, within ~2 ulp: x = n·ln2 + r with |r| ≤ ln2/2, <see cref="Polynomials.ExpReduced{T, TArithmetic}"/>
    /// for e^r and 2ⁿ built in the exponent bits. 0 below the float range, +∞ above it, NaN kept.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var clamped = Vector256.Min(Vector256.Max(x, Vector256.Create(ExpUnderflow)), Vector256.Create(ExpOverflow));
        var n = Vector256.Floor(MultiplyAdd(clamped, Vector256.Create(Log2E), Vector256.Create(0.5f)));
        var r = MultiplyAdd(n, Vector256.Create(-Ln2High), clamped);
        r = MultiplyAdd(n, Vector256.Create(-Ln2Low), r);
        var p = Polynomials.ExpReduced<Vector256<float>, Lanes256>(r);
        // 2ⁿ in two factors: n reaches 128 at the top of the range, one past the largest float exponent.
        var half = Vector256.ShiftRightArithmetic(Vector256.ConvertToInt32(n), 1);
        var scale1 = Vector256.ShiftLeft(half + Vector256.Create(127), 23).AsSingle();
        var scale2 = Vector256.ShiftLeft(Vector256.ConvertToInt32(n) - half + Vector256.Create(127), 23).AsSingle();
        var result = p * scale1 * scale2;
        result = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(ExpUnderflow)), Vector256<float>.Zero, result);
        result = Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(ExpOverflow)),
            Vector256.Create(float.PositiveInfinity), result);
        return Vector256.ConditionalSelect(Vector256.Equals(x, x), result, x);
    }

    /// <summary>
    /// The 16-lane <see cref="Exp(Vector256{float})"/>. With AVX-512, its own rounding (vrndscaleps) and 2ⁿ scaling
    /// (vscalefps, which saturates to 0 and +∞ by itself) take half the instructions, so the attention's softmax costs
    /// less beside its products; otherwise two 256-bit halves.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        if (!Avx512F.IsSupported)
            return Vector512.Create(Exp(x.GetLower()), Exp(x.GetUpper()));
        var clamped = Vector512.Min(Vector512.Max(x, Vector512.Create(-104f)), Vector512.Create(ExpOverflow + 1f));
        var n = Avx512F.RoundScale(clamped * Vector512.Create(Log2E), 0);
        var r = MultiplyAdd(n, Vector512.Create(-Ln2High), clamped);
        r = MultiplyAdd(n, Vector512.Create(-Ln2Low), r);
        var p = Polynomials.ExpReduced<Vector512<float>, Lanes512>(r);
        return Vector512.ConditionalSelect(Vector512.Equals(x, x), Avx512F.Scale(p, n), x);
    }

    /// <summary>tanh(x) per lane as <see cref="ActivationMath.Tanh"/> computes it: 1 − 2/(e^(2x) + 1), ±1 at the ends, NaN kept.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Tanh(Vector256<float> x) =>
        Vector256.Create(1f) - Vector256.Create(2f) / (Exp(x + x) + Vector256.Create(1f));

    /// <summary>Σ w[a]·tanh(q[a] + k[a]): the additive attention score of one query and key over projected rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float AdditiveScore(float* q, float* k, float* w, int length)
    {
        int a = 0;
        float sum = 0f;
        if (CpuFeatures.Vector256Paths)
        {
            Vector256<float> s0 = default, s1 = default;
            for (; a + 16 <= length; a += 16)
            {
                s0 = MultiplyAdd(Vector256.Load(w + a), Tanh(Vector256.Load(q + a) + Vector256.Load(k + a)), s0);
                s1 = MultiplyAdd(Vector256.Load(w + a + 8), Tanh(Vector256.Load(q + a + 8) + Vector256.Load(k + a + 8)), s1);
            }
            for (; a + 8 <= length; a += 8)
                s0 = MultiplyAdd(Vector256.Load(w + a), Tanh(Vector256.Load(q + a) + Vector256.Load(k + a)), s0);
            sum = Vector256.Sum(s0 + s1);
        }
        for (; a < length; a++)
            sum += w[a] * ActivationMath.Tanh(q[a] + k[a]);
        return sum;
    }

    /// <summary>max(0, x) per lane, NaN kept (as PyTorch and the ILGPU kernels do).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Relu(Vector256<float> x) =>
        Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256<float>.Zero) | ~Vector256.Equals(x, x), x, Vector256<float>.Zero);

    /// <summary>GELU(x) = 0.5·x·(1 + erf(x/√2)) per lane, erf as in <see cref="ActivationMath.Erf"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Gelu(Vector256<float> x)
    {
        var scaled = x * Vector256.Create(0.70710678118654752f);
        var ax = Vector256.Abs(scaled);
        var t = Vector256<float>.One / MultiplyAdd(ax, Vector256.Create(Polynomials.ErfT), Vector256<float>.One);
        var erfAbs = Vector256<float>.One - Polynomials.ErfTail<Vector256<float>, Lanes256>(t) * Exp(-(ax * ax));
        var erf = Vector256.ConditionalSelect(Vector256.LessThan(scaled, Vector256<float>.Zero), -erfAbs, erfAbs);
        return Vector256.Create(0.5f) * x * (Vector256<float>.One + erf);
    }

    /// <summary><see cref="ActivationMath.GeluTanh"/> per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> GeluTanh(Vector256<float> x) =>
        Vector256.Create(0.5f) * x * (Vector256<float>.One
            + Tanh(Vector256.Create(0.79788456080286536f) * (x + Vector256.Create(0.044715f) * x * x * x)));

    /// <summary>Applies an <see cref="Problems.Activation"/> value per lane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Activate(Vector256<float> x, int activation) => activation switch
    {
        (int)Problems.Activation.Relu => Relu(x),
        (int)Problems.Activation.Gelu => Gelu(x),
        (int)Problems.Activation.GeluTanh => GeluTanh(x),
        _ => x,
    };

    /// <summary>Σ x[i]·y[i] over four vector accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(float* x, float* y, int length)
    {
        int i = 0;
        float sum = 0f;
        if (CpuFeatures.Vector256Paths)
        {
            Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
            for (; i + 32 <= length; i += 32)
            {
                s0 = MultiplyAdd(Vector256.Load(x + i), Vector256.Load(y + i), s0);
                s1 = MultiplyAdd(Vector256.Load(x + i + 8), Vector256.Load(y + i + 8), s1);
                s2 = MultiplyAdd(Vector256.Load(x + i + 16), Vector256.Load(y + i + 16), s2);
                s3 = MultiplyAdd(Vector256.Load(x + i + 24), Vector256.Load(y + i + 24), s3);
            }
            for (; i + 8 <= length; i += 8)
                s0 = MultiplyAdd(Vector256.Load(x + i), Vector256.Load(y + i), s0);
            sum = Vector256.Sum(s0 + s1 + (s2 + s3));
        }
        for (; i < length; i++)
            sum += x[i] * y[i];
        return sum;
    }

    /// <summary>y[i] += s·x[i] (axpy).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddScaled(float* y, float s, float* x, int length)
    {
        int i = 0;
        if (CpuFeatures.Vector256Paths)
        {
            var scale = Vector256.Create(s);
            for (; i + 8 <= length; i += 8)
                MultiplyAdd(scale, Vector256.Load(x + i), Vector256.Load(y + i)).Store(y + i);
        }
        for (; i < length; i++)
            y[i] += s * x[i];
    }

    /// <summary>y[i] = factor·x[i] (y may be x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Scale(float* x, float factor, float* y, int length)
    {
        int i = 0;
        if (CpuFeatures.Vector256Paths)
        {
            var scale = Vector256.Create(factor);
            for (; i + 8 <= length; i += 8)
                (Vector256.Load(x + i) * scale).Store(y + i);
        }
        for (; i < length; i++)
            y[i] = x[i] * factor;
    }

    /// <summary>y[i] = act(alpha·x[i]) (y may be x).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ScaleActivate(float* x, float alpha, int activation, float* y, int length)
    {
        int i = 0;
        if (CpuFeatures.Vector256Paths)
        {
            var scale = Vector256.Create(alpha);
            for (; i + 8 <= length; i += 8)
                Activate(Vector256.Load(x + i) * scale, activation).Store(y + i);
        }
        for (; i < length; i++)
            y[i] = ActivationMath.Apply(alpha * x[i], activation);
    }

    /// <summary>s[i] = e^(s[i] − max) in place; returns Σ s[i].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float ExpShifted(float* s, float max, int length)
    {
        int i = 0;
        float sum = 0f;
        if (CpuFeatures.Vector256Paths)
        {
            var shift = Vector256.Create(max);
            var sums = Vector256<float>.Zero;
            for (; i + 8 <= length; i += 8)
            {
                var weight = Exp(Vector256.Load(s + i) - shift);
                weight.Store(s + i);
                sums += weight;
            }
            sum = Vector256.Sum(sums);
        }
        for (; i < length; i++)
        {
            float weight = MathF.Exp(s[i] - max);
            s[i] = weight;
            sum += weight;
        }
        return sum;
    }

    /// <summary>The largest lane (NaN lanes are the callers' to report).</summary>
    public static float Max(Vector256<float> v)
    {
        var halves = Vector128.Max(v.GetLower(), v.GetUpper());
        float max = float.NegativeInfinity;
        for (int lane = 0; lane < Vector128<float>.Count; lane++)
            max = MathF.Max(max, halves.GetElement(lane));
        return max;
    }

    /// <summary>
    /// A vector width as a type, so a loop written once over <typeparamref name="TVector"/> is compiled for each width
    /// (the structs are empty; every call inlines).
    /// </summary>
    public interface ILanes<TVector> : IArithmetic<TVector> where TVector : struct
    {
        /// <summary>Floats per vector.</summary>
        int Count { get; }
        /// <summary>Loads <see cref="Count"/> floats.</summary>
        TVector Load(float* source);
        /// <summary>Stores <see cref="Count"/> floats.</summary>
        void Store(TVector value, float* destination);
        /// <summary>a − b.</summary>
        TVector Subtract(TVector a, TVector b);
        /// <summary>Lane-wise maximum (as Vector256.Max: NaN handling is the caller's).</summary>
        TVector Max(TVector a, TVector b);
        /// <summary>All ones where a = b (false where either is NaN).</summary>
        TVector EqualsMask(TVector a, TVector b);
        /// <summary>a | b.</summary>
        TVector Or(TVector a, TVector b);
        /// <summary>~a.</summary>
        TVector Not(TVector a);
        /// <summary>Lanes of <paramref name="whenTrue"/> where the mask is set, else of <paramref name="whenFalse"/>.</summary>
        TVector Select(TVector mask, TVector whenTrue, TVector whenFalse);
        /// <summary>e^x per lane.</summary>
        TVector Exp(TVector x);
    }

    /// <summary>Eight lanes (AVX2+FMA).</summary>
    public readonly struct Lanes256 : ILanes<Vector256<float>>
    {
        /// <inheritdoc />
        public int Count => Vector256<float>.Count;
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Constant(float value) => Vector256.Create(value);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Subtract(Vector256<float> a, Vector256<float> b) => a - b;
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Multiply(Vector256<float> a, Vector256<float> b) => a * b;
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) => CpuVector.MultiplyAdd(a, b, c);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Load(float* source) => Vector256.Load(source);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(Vector256<float> value, float* destination) => value.Store(destination);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Max(Vector256<float> a, Vector256<float> b) => Vector256.Max(a, b);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> EqualsMask(Vector256<float> a, Vector256<float> b) => Vector256.Equals(a, b);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Or(Vector256<float> a, Vector256<float> b) => a | b;
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Not(Vector256<float> a) => ~a;
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Select(Vector256<float> mask, Vector256<float> whenTrue, Vector256<float> whenFalse) =>
            Vector256.ConditionalSelect(mask, whenTrue, whenFalse);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Exp(Vector256<float> x) => CpuVector.Exp(x);
    }

    /// <summary>Sixteen lanes (AVX-512).</summary>
    public readonly struct Lanes512 : ILanes<Vector512<float>>
    {
        /// <inheritdoc />
        public int Count => Vector512<float>.Count;
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Constant(float value) => Vector512.Create(value);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Subtract(Vector512<float> a, Vector512<float> b) => a - b;
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Multiply(Vector512<float> a, Vector512<float> b) => a * b;
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> c) => CpuVector.MultiplyAdd(a, b, c);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Load(float* source) => Vector512.Load(source);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Store(Vector512<float> value, float* destination) => value.Store(destination);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Max(Vector512<float> a, Vector512<float> b) => Vector512.Max(a, b);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> EqualsMask(Vector512<float> a, Vector512<float> b) => Vector512.Equals(a, b);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Or(Vector512<float> a, Vector512<float> b) => a | b;
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Not(Vector512<float> a) => ~a;
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Select(Vector512<float> mask, Vector512<float> whenTrue, Vector512<float> whenFalse) =>
            Vector512.ConditionalSelect(mask, whenTrue, whenFalse);
        /// <inheritdoc />
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Exp(Vector512<float> x) => CpuVector.Exp(x);
    }
}
