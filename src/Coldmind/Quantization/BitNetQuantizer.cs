using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Coldmind.Numerics;

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

    /// <summary>
    /// Absmax int8: step = max|x| / 127, q = round(x / step) (halves away from zero) in [−127, 127]; returns the
    /// step (x ≈ step·q), 1 for all-zero or empty x. The vector path rounds finite values as the scalar one does, bit for bit: it adds
    /// the sign where |v − trunc(v)| ≥ ½, which is exact, where trunc(v + ½) would round 0.49999997 up.
    /// </summary>
    public static float QuantizeInt8(ReadOnlySpan<float> x, Span<sbyte> q, SimdPath? path = null)
    {
        if (q.Length < x.Length) throw new ColdmindException($"{x.Length} activations do not fit {q.Length} int8 values.");
        float amax = x.IsEmpty ? 0 : MathF.Abs(TensorPrimitives.MaxMagnitude(x));
        float step = amax > 0 ? amax / 127f : 1f;
        float inv = 1f / step;
        int i = 0;
        ref float source = ref MemoryMarshal.GetReference(x);
        ref sbyte target = ref MemoryMarshal.GetReference(q);
        if ((path ?? Simd.Best) >= SimdPath.Vector512 && Vector512.IsHardwareAccelerated)
            for (; i + 64 <= x.Length; i += 64)
            {
                var low = Vector512.Narrow(Round(ref source, i, inv), Round(ref source, i + 16, inv));
                var high = Vector512.Narrow(Round(ref source, i + 32, inv), Round(ref source, i + 48, inv));
                Vector512.Narrow(low, high).StoreUnsafe(ref target, (nuint)i);
            }
        if ((path ?? Simd.Best) >= SimdPath.Vector256 && Vector256.IsHardwareAccelerated)
            for (; i + 32 <= x.Length; i += 32)
            {
                var low = Vector256.Narrow(Round256(ref source, i, inv), Round256(ref source, i + 8, inv));
                var high = Vector256.Narrow(Round256(ref source, i + 16, inv), Round256(ref source, i + 24, inv));
                Vector256.Narrow(low, high).StoreUnsafe(ref target, (nuint)i);
            }
        for (; i < x.Length; i++) q[i] = (sbyte)Math.Clamp(MathF.Round(x[i] * inv, MidpointRounding.AwayFromZero), -127f, 127f);
        return step;
    }

    /// <summary>16 (below: 8) values from <paramref name="at"/>, times <paramref name="inv"/>, rounded as the scalar path rounds.</summary>
    private static Vector512<int> Round(ref float x, int at, float inv)
    {
        var v = Vector512.LoadUnsafe(ref x, (nuint)at) * inv;
        var whole = Vector512.Truncate(v);
        var half = Vector512.GreaterThanOrEqual(Vector512.Abs(v - whole), Vector512.Create(0.5f));
        var rounded = whole + (Vector512.CopySign(Vector512<float>.One, v) & half);
        return Vector512.ConvertToInt32(Vector512.Clamp(rounded, Vector512.Create(-127f), Vector512.Create(127f)));
    }

    private static Vector256<int> Round256(ref float x, int at, float inv)
    {
        var v = Vector256.LoadUnsafe(ref x, (nuint)at) * inv;
        var whole = Vector256.Truncate(v);
        var half = Vector256.GreaterThanOrEqual(Vector256.Abs(v - whole), Vector256.Create(0.5f));
        var rounded = whole + (Vector256.CopySign(Vector256<float>.One, v) & half);
        return Vector256.ConvertToInt32(Vector256.Clamp(rounded, Vector256.Create(-127f), Vector256.Create(127f)));
    }
}
