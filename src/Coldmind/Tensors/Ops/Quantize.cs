namespace Coldmind.Tensors;

/// <summary>
/// Fake quantization for quantization-aware training (BitNet b1.58): the forward pass sees quantized
/// values, the backward pass is the straight-through estimator (the gradient passes unchanged, as if the
/// rounding were the identity). <c>lambda</c> blends float and quantized forward values,
/// x + λ·(q(x) − x), so a trained float model can be moved to full quantization gradually (λ: 0 → 1).
/// </summary>
public sealed partial class Tensor
{
    /// <summary>
    /// BitNet b1.58 weights: γ = mean|W| over the whole tensor, W̃ = clamp(round(W / (γ + ε)), −1, 1)·γ.
    /// </summary>
    public Tensor TernaryWeightsSte(float lambda = 1f)
    {
        var w = Contiguous();
        var ws = w.Span;
        float gamma = TensorPrimitives.SumOfMagnitudes(ws) / Math.Max(ws.Length, 1);
        float inv = 1f / (gamma + 1e-5f);
        var y = NewBuffer(Numel);
        for (int i = 0; i < y.Length; i++)
        {
            float q = Math.Clamp(MathF.Round(ws[i] * inv, MidpointRounding.AwayFromZero), -1f, 1f) * gamma;
            y[i] = ws[i] + lambda * (q - ws[i]);
        }
        return FromOp(y, Shape, [w], o => w.AccumulateGrad(o.Grad!));
    }

    /// <summary>
    /// BitNet b1.58 activations: per token (row of the last axis), s = 127 / max|x|,
    /// x̃ = clamp(round(x·s), −128, 127) / s — 8-bit absmax quantization.
    /// </summary>
    public Tensor Int8ActivationsSte(float lambda = 1f)
    {
        var x = Contiguous();
        int n = Shape[^1], rows = Numel / Math.Max(n, 1);
        var y = NewBuffer(Numel);
        for (int r = 0; r < rows; r++)
        {
            var row = x.Span.Slice(r * n, n);
            float s = 127f / Math.Max(MathF.Abs(TensorPrimitives.MaxMagnitude(row)), 1e-5f);
            for (int j = 0; j < n; j++)
            {
                float q = Math.Clamp(MathF.Round(row[j] * s, MidpointRounding.AwayFromZero), -128f, 127f) / s;
                y[r * n + j] = row[j] + lambda * (q - row[j]);
            }
        }
        return FromOp(y, Shape, [x], o => x.AccumulateGrad(o.Grad!));
    }
}
