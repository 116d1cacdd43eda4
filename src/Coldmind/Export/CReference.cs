namespace Coldmind.Export;

/// <summary>
/// The exported C code's arithmetic, operation for operation, in C#: what the C must give. The integer program
/// (<see cref="Fpu.None"/>, and every ternary layer's sums) is matched bit for bit; the float program is written in
/// the same order (sequential sums, no fused multiply-add) so IEEE hosts agree too, though only a tolerance is
/// promised for float. Coldmind's own runtime (SIMD sums) is the independent judge of both.
/// </summary>
public static class CReference
{
    /// <summary>Scores of the float program (<see cref="Fpu.Single"/>).</summary>
    public static float[] Float(IReadOnlyList<ExportLayer> layers, ReadOnlySpan<float> x) =>
        FloatLayerOutputs(layers, x)[^1];

    /// <summary>Every layer's output in the float program, for calibration.</summary>
    public static float[][] FloatLayerOutputs(IReadOnlyList<ExportLayer> layers, ReadOnlySpan<float> input)
    {
        var outputs = new float[layers.Count][];
        var x = input.ToArray();
        for (int l = 0; l < layers.Count; l++)
        {
            var y = new float[layers[l].Rows];
            switch (layers[l])
            {
                case FloatLayer f: Linear(f, x, y); break;
                case CodeLayer c: Codes(c, x, y); break;
                case TernaryLayer t: Ternary(t, x, y); break;
                case ConvLayer v: Conv(v, x, y); break;
            }
            outputs[l] = x = y;
        }
        return outputs;
    }

    private static float Finish(float s, float[]? bias, int r, bool relu)
    {
        if (bias != null) s += bias[r];
        return relu && s < 0 ? 0 : s;
    }

    private static void Linear(FloatLayer f, float[] x, float[] y)
    {
        for (int r = 0; r < f.Rows; r++)
        {
            float s = 0;
            for (int c = 0; c < f.Columns; c++)
                if (f.Weight[r * f.Columns + c] != 0) s += f.Weight[r * f.Columns + c] * x[c];
            y[r] = Finish(s, f.Bias, r, f.Relu);
        }
    }

    private static void Codes(CodeLayer q, float[] x, float[] y)
    {
        for (int r = 0; r < q.Rows; r++)
        {
            float s = 0;
            for (int g = 0; g < q.Groups; g++)
            {
                float a = 0;
                for (int c = g * q.GroupWidth; c < Math.Min(q.Columns, (g + 1) * q.GroupWidth); c++)
                    if (q.Codes[r * q.Columns + c] != 0) a += q.Codes[r * q.Columns + c] * x[c];
                s += q.Scales[q.ScaleIndex(r, g)] * a;
            }
            y[r] = Finish(s, q.Bias, r, q.Relu);
        }
    }

    private static void Ternary(TernaryLayer t, float[] x, float[] y)
    {
        int n = t.Columns;
        float ss = 0;
        for (int i = 0; i < n; i++) ss += x[i] * x[i];
        float inv = 1f / MathF.Sqrt(ss / n + t.Eps);
        float amax = 0;
        for (int i = 0; i < n; i++) amax = Math.Max(amax, Math.Abs(x[i] * inv * t.Norm[i]));
        float step = amax > 0 ? amax / 127f : 1f, inv2 = 1f / step;
        var q = new int[n];
        for (int i = 0; i < n; i++) q[i] = RoundAway(x[i] * inv * t.Norm[i] * inv2);
        float scale = t.Scale * step;
        for (int r = 0; r < t.Rows; r++)
        {
            int acc = 0;
            for (int c = 0; c < n; c++) acc += t.Trits[r * n + c] * q[c];
            y[r] = Finish(acc * scale, null, r, t.Relu);
        }
    }

    /// <summary>
    /// round(v) half away from zero, clamped to ±127, as the C does it without libm: truncate, then look at the exact
    /// remainder.
    /// </summary>
    private static int RoundAway(float v)
    {
        int t = (int)v;
        float f = v - t;
        if (f >= 0.5f) t++;
        else if (f <= -0.5f) t--;
        return Math.Clamp(t, -127, 127);
    }

    private static void Conv(ConvLayer v, float[] x, float[] y)
    {
        int h = v.Height, w = v.Width, ci = v.InChannels;
        var full = new float[h * w];
        int oh = v.Pool ? h / 2 : h, ow = v.Pool ? w / 2 : w;
        for (int o = 0; o < v.OutChannels; o++)
        {
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++)
                {
                    float s = 0;
                    for (int c = 0; c < ci; c++)
                        for (int ki = 0; ki < 3; ki++)
                            for (int kj = 0; kj < 3; kj++)
                            {
                                int ii = i + ki - 1, jj = j + kj - 1;
                                if (ii >= 0 && ii < h && jj >= 0 && jj < w)
                                    s += v.Weight[((o * ci + c) * 3 + ki) * 3 + kj] * x[(c * h + ii) * w + jj];
                            }
                    full[i * w + j] = Finish(s, v.Bias, o, v.Relu);
                }
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                    y[(o * oh + i) * ow + j] = v.Pool
                        ? Math.Max(Math.Max(full[2 * i * w + 2 * j], full[2 * i * w + 2 * j + 1]),
                            Math.Max(full[(2 * i + 1) * w + 2 * j], full[(2 * i + 1) * w + 2 * j + 1]))
                        : full[i * w + j];
        }
    }

    /// <summary>Int32 scores of the integer program (<see cref="Fpu.None"/>) for an int8 input.</summary>
    public static int[] Integer(FixedPointPlan plan, ReadOnlySpan<sbyte> input)
    {
        var x = input.ToArray().Select(v => (int)v).ToArray();
        for (int l = 0; l < plan.Layers.Count; l++)
        {
            bool last = l == plan.Layers.Count - 1;
            var layer = plan.Layers[l];
            var y = new int[layer.Rows];
            int lo = layer.Relu ? 0 : last ? int.MinValue : -127, hi = last ? int.MaxValue : 127;
            switch (layer, plan.Steps[l])
            {
                case (CodeLayer c, CodeFixedPoint f):
                    for (int r = 0; r < c.Rows; r++)
                    {
                        long total = f.Bias?[r] ?? 0;
                        for (int g = 0; g < c.Groups; g++)
                        {
                            int acc = 0;
                            for (int k = g * c.GroupWidth; k < Math.Min(c.Columns, (g + 1) * c.GroupWidth); k++)
                                acc += c.Codes[r * c.Columns + k] * x[k];
                            total += (long)acc * f.Multipliers[c.ScaleIndex(r, g)];
                        }
                        long v = FixedPointPlan.RoundShift(total, f.Shift);
                        y[r] = (int)Math.Clamp(v, lo, hi);
                    }
                    break;
                case (TernaryLayer t, TernaryFixedPoint f):
                    int n = t.Columns, m = 0;
                    long sumSquares = 0;
                    for (int i = 0; i < n; i++)
                    {
                        m = Math.Max(m, Math.Abs(x[i] * f.Gain[i]));
                        sumSquares += x[i] * x[i];
                    }
                    var q = new int[n];
                    if (m > 0)
                        for (int i = 0; i < n; i++)
                        {
                            int p = x[i] * f.Gain[i];
                            q[i] = (254 * p + (p >= 0 ? m : -m)) / (2 * m);
                        }
                    long d = (long)FixedPointPlan.SquareRoot((ulong)(sumSquares << 16) + (ulong)f.Eps);
                    long multiplier = d > 0 ? m * f.K / d : 0;
                    for (int r = 0; r < t.Rows; r++)
                    {
                        int acc = 0;
                        for (int c = 0; c < n; c++) acc += t.Trits[r * n + c] * q[c];
                        long v = FixedPointPlan.RoundShift(acc * multiplier, f.Shift);
                        y[r] = (int)Math.Clamp(v, lo, hi);
                    }
                    break;
            }
            x = y;
        }
        return x;
    }
}
