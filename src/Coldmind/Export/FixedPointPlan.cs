using Coldmind.Quantization;

namespace Coldmind.Export;

/// <summary>
/// Whether the exported code's float parts (input scaling, float layers, RMSNorm, scores) use the FPU or fixed point.
/// </summary>
public enum Fpu { Single, None }

/// <summary>
/// Fixed-point constants of one layer (see <see cref="FixedPointPlan"/>); the output is int8 at
/// <see cref="OutScale"/>, or int32 for the last layer.
/// </summary>
public abstract record LayerFixedPoint(double InScale, double OutScale, int Shift);

/// <summary>
/// A code layer in integers: acc_g = Σ code·x_q over group g (int32), then
/// y_q = RoundShift(Σ_g acc_g·Multiplier[g] + Bias[r], Shift), the multiplier ≈ scale_g·s_in/s_out·2^Shift
/// (int32) and the bias ≈ b/s_out·2^Shift (int64): CMSIS-NN's and TFLite Micro's requantization, per group.
/// </summary>
public sealed record CodeFixedPoint(double InScale, double OutScale, int Shift, int[] Multipliers, long[]? Bias)
    : LayerFixedPoint(InScale, OutScale, Shift);

/// <summary>
/// A BitNet layer in integers, RMSNorm folded in. p_i = x_i·Gain_i (gain in Q<see cref="GainShift"/>), m = max|p|,
/// q_i = round(127·p_i/m) (absmax int8 is blind to the 1/rms factor, so it needs no division by rms), acc = Σ±q.
/// The real output is scale·(m_real/127)/rms·acc; with S = Σx_q² and D = isqrt(S·2^16 + Eps) ≈ 2^8·rms·√n/s_in
/// it is y_q = RoundShift(acc·(m·K/D), Shift), K = scale·2^−GainShift·√n·2^8/(127·s_out)·2^Shift: one division
/// an example.
/// </summary>
public sealed record TernaryFixedPoint(
    double InScale, double OutScale, int Shift, int GainShift, short[] Gain, long K, long Eps)
    : LayerFixedPoint(InScale, OutScale, Shift);

/// <summary>
/// The integer program of a classifier for a core without an FPU: int8 activations between layers at scales set by
/// calibration (the largest magnitude each layer gives on calibration examples maps to 127, as TFLite Micro's
/// post-training quantization sets them), int32 accumulators, fixed-point requantization, int32 scores. Float layers
/// are rounded to int8 codes with a scale per row. The input is quantized from the float's bits by
/// <see cref="InputInverse"/>·2^−<see cref="InputShift"/> ≈ 1/<see cref="InputScale"/>.
/// </summary>
public sealed record FixedPointPlan(
    IReadOnlyList<ExportLayer> Layers, IReadOnlyList<LayerFixedPoint> Steps, double InputScale, long InputInverse,
    int InputShift)
{
    public double ScoreScale => Steps[^1].OutScale;

    /// <summary>
    /// Lowers <paramref name="graph"/>; <paramref name="calibration"/> (examples × inputs) sets the activation scales
    /// through the float reference.
    /// </summary>
    public static FixedPointPlan Build(ExportGraph graph, float[] calibration)
    {
        if (graph.Layers.FirstOrDefault(l => l is ConvLayer) is { } conv)
            throw new ColdmindException($"Layer {graph.Layers.ToList().IndexOf(conv)} is a float 3×3 convolution; "
                + "--fpu none writes MLP layers (float, int8/int4 codes, ternary) only. Export the CNN with "
                + "--fpu single (a Cortex-M without FPU runs it in soft float), or shrink it to an MLP with "
                + "`coldmind shrink`.");
        int n = graph.Inputs, examples = calibration.Length / n;
        if (examples == 0)
            throw new ColdmindException("--fpu none needs calibration examples to set its activation scales.");
        var max = new double[graph.Layers.Count];
        double inputMax = 0;
        for (int e = 0; e < examples; e++)
        {
            var x = calibration.AsSpan(e * n, n);
            foreach (float v in x) inputMax = Math.Max(inputMax, Math.Abs(v));
            var outputs = CReference.FloatLayerOutputs(graph.Layers, x);
            for (int l = 0; l < max.Length; l++) foreach (float v in outputs[l]) max[l] = Math.Max(max[l], Math.Abs(v));
        }
        double inScale = inputMax > 0 ? inputMax / 127 : 1;
        var (inverse, inverseShift) = Normalize(1 / inScale);
        var layers = new List<ExportLayer>();
        var steps = new List<LayerFixedPoint>();
        double s = inScale;
        for (int l = 0; l < graph.Layers.Count; l++)
        {
            bool last = l == graph.Layers.Count - 1;
            double outScale = max[l] > 0 ? max[l] / (last ? 32767 : 127) : 1;
            var layer = graph.Layers[l] is FloatLayer f ? RoundFloat(f) : graph.Layers[l];
            layers.Add(layer);
            steps.Add(layer switch
            {
                CodeLayer c => CodeStep(c, s, outScale),
                TernaryLayer t => TernaryStep(t, s, outScale),
                _ => throw new InvalidOperationException(layer.Kind),
            });
            s = outScale;
        }
        return new FixedPointPlan(layers, steps, inScale, inverse, inverseShift);
    }

    /// <summary>A float layer as int8 codes with a scale per row (absmax), for the integer path.</summary>
    private static CodeLayer RoundFloat(FloatLayer f)
    {
        var codes = new sbyte[f.Weight.Length];
        var scales = new float[f.Rows];
        for (int r = 0; r < f.Rows; r++)
        {
            var row = f.Weight.AsSpan(r * f.Columns, f.Columns);
            float amax = 0;
            foreach (float v in row) amax = Math.Max(amax, Math.Abs(v));
            scales[r] = amax > 0 ? amax / 127 : 1;
            for (int c = 0; c < f.Columns; c++)
                codes[r * f.Columns + c] = (sbyte)MathF.Round(row[c] / scales[r], MidpointRounding.AwayFromZero);
        }
        return new CodeLayer(f.Rows, f.Columns, f.Relu, PtqMethod.Int8, f.Columns, codes, scales, f.Bias);
    }

    private static CodeFixedPoint CodeStep(CodeLayer c, double inScale, double outScale)
    {
        double largest = c.Scales.Max(v => Math.Abs((double)v)) * inScale / outScale;
        int shift = ShiftFor(largest, 30);
        var multipliers = c.Scales.Select(v => checked((int)Math.Round(v * inScale / outScale * Math.Pow(2, shift))))
            .ToArray();
        var bias = c.Bias?.Select(b => checked((long)Math.Round(b / outScale * Math.Pow(2, shift)))).ToArray();
        return new CodeFixedPoint(inScale, outScale, shift, multipliers, bias);
    }

    private static TernaryFixedPoint TernaryStep(TernaryLayer t, double inScale, double outScale)
    {
        double gmax = t.Norm.Max(v => Math.Abs((double)v));
        int gainShift = ShiftFor(gmax, 15);
        var gain = t.Norm.Select(v => (short)Math.Round(v * Math.Pow(2, gainShift))).ToArray();
        double c1 = t.Scale * Math.Pow(2, -gainShift) / (127 * outScale) * Math.Sqrt(t.Columns) * 256;
        // m/D ≤ max|Gain|·2^−8 (m ≤ max|x_q|·max|Gain| and D ≥ 2^8·max|x_q|): the multiplier m·K/D stays below 2^30
        int shift = ShiftFor(c1 * gain.Max(v => Math.Abs((int)v)) / 256.0, 30);
        long k = checked((long)Math.Round(c1 * Math.Pow(2, shift)));
        long eps = (long)Math.Round(t.Columns * (double)t.Eps / (inScale * inScale) * 65536);
        return new TernaryFixedPoint(inScale, outScale, shift, gainShift, gain, k, eps);
    }

    /// <summary>
    /// The largest shift (0 to 40) that keeps <paramref name="value"/>·2^shift below 2^<paramref name="bits"/>.
    /// </summary>
    private static int ShiftFor(double value, int bits) =>
        value <= 0 ? 0 : Math.Clamp((int)Math.Floor(bits - Math.Log2(value)) - 1, 0, 40);

    /// <summary>(m, e) with m·2^−e ≈ v and m in [2^30, 2^31).</summary>
    private static (long, int) Normalize(double v)
    {
        int e = 30 - (int)Math.Floor(Math.Log2(v));
        return ((long)Math.Round(v * Math.Pow(2, e)), e);
    }

    // The integer helpers the C code has too, written the same way (the reference runs these).

    /// <summary>v·2^−shift rounded half away from zero.</summary>
    public static long RoundShift(long v, int shift)
    {
        if (shift == 0) return v;
        long half = 1L << (shift - 1);
        return v >= 0 ? (v + half) >> shift : -((-v + half) >> shift);
    }

    /// <summary>⌊√v⌋, bit by bit.</summary>
    public static ulong SquareRoot(ulong v)
    {
        ulong root = 0, bit = 1UL << 62;
        while (bit > v) bit >>= 2;
        while (bit != 0)
        {
            if (v >= root + bit) { v -= root + bit; root = (root >> 1) + bit; }
            else root >>= 1;
            bit >>= 2;
        }
        return root;
    }

    /// <summary>round(x / s_in) in [−127, 127] from the float's bits, no float arithmetic (NaN gives 0).</summary>
    public sbyte QuantizeInput(float x)
    {
        uint u = BitConverter.SingleToUInt32Bits(x);
        int e = (int)((u >> 23) & 0xFF);
        uint mantissa = (u & 0x7FFFFF) | (e != 0 ? 0x800000u : 0);
        if (e == 255) return mantissa != 0x800000u ? (sbyte)0 : (sbyte)((u >> 31) != 0 ? -127 : 127);
        if (e == 0) e = 1;
        int q;
        int shift = 150 + InputShift - e;
        if (mantissa == 0 || shift >= 63) q = 0;
        else if (shift <= 0) q = 127;
        else
        {
            ulong r = ((ulong)mantissa * (ulong)InputInverse + (1UL << (shift - 1))) >> shift;
            q = r > 127 ? 127 : (int)r;
        }
        return (sbyte)((u >> 31) != 0 ? -q : q);
    }
}
