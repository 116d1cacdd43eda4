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
