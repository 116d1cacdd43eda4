namespace Coldmind.Quantization;

/// <summary>
/// BitNet b1.58's two quantizers, defined once for training (fake quantization in the autodiff ops) and for
/// the runtime (packed weights, int8 activations of the GEMV), so the two cannot drift apart.
/// </summary>
public static class BitNetQuantizer
{
    /// <summary>Absmean ternarization: γ = mean|W|, t = clamp(round(W / (γ + ε)), −1, 1); returns γ (W ≈ γ·t).</summary>
    public static float Ternarize(ReadOnlySpan<float> w, Span<sbyte> trits)
    {
        float gamma = TensorPrimitives.SumOfMagnitudes(w) / Math.Max(w.Length, 1);
        float inv = 1f / (gamma + 1e-5f);
        for (int i = 0; i < w.Length; i++) trits[i] = (sbyte)Math.Clamp(MathF.Round(w[i] * inv, MidpointRounding.AwayFromZero), -1f, 1f);
        return gamma;
    }

    /// <summary>
    /// The ternary weights a float tensor is stored as: values that are already γ·t (one nonzero magnitude, as a
    /// ternary GGUF tensor reads back) are kept, anything else (a merge of such tensors) is ternarized by absmean.
    /// Keeping the first kind matters because absmean is not idempotent: γ·t has mean magnitude γ·p, p the
    /// fraction of nonzero trits, so ternarizing it again would shrink it by p.
    /// </summary>
    public static float[] ProjectTernary(ReadOnlySpan<float> values)
    {
        float magnitude = 0;
        bool ternary = true;
        foreach (float v in values)
        {
            if (v == 0) continue;
            if (magnitude == 0) magnitude = MathF.Abs(v);
            else if (MathF.Abs(v) != magnitude) { ternary = false; break; }
        }
        if (ternary) return values.ToArray();
        var trits = new sbyte[values.Length];
        float gamma = Ternarize(values, trits);
        return trits.Select(t => gamma * t).ToArray();
    }

    /// <summary>
    /// Latent weights whose absmean ternarization (as BitLinear's forward pass does it) gives back γ·t exactly:
    /// γ·t / p, p the fraction of nonzero trits. How a ternary tensor read from a file is loaded for training
    /// or for scoring in the trainer.
    /// </summary>
    public static float[] LatentOf(ReadOnlySpan<float> ternaryValues)
    {
        var projected = ProjectTernary(ternaryValues);
        int nonZero = projected.Count(v => v != 0);
        if (nonZero == 0) return projected;
        TensorPrimitives.Multiply(projected, (float)projected.Length / nonZero, projected);
        return projected;
    }

    /// <summary>Absmax int8: step = max|x| / 127, q = round(x / step) in [−127, 127]; returns the step (x ≈ step·q), 1 for all-zero x.</summary>
    public static float QuantizeInt8(ReadOnlySpan<float> x, Span<sbyte> q)
    {
        float amax = MathF.Abs(TensorPrimitives.MaxMagnitude(x));
        float step = amax > 0 ? amax / 127f : 1f;
        float inv = 1f / step;
        for (int i = 0; i < x.Length; i++) q[i] = (sbyte)Math.Clamp(MathF.Round(x[i] * inv, MidpointRounding.AwayFromZero), -127f, 127f);
        return step;
    }
}
