using Coldmind.Quantization;

namespace Coldmind.Tensors;

/// <summary>
/// Fake quantization for quantization-aware training (BitNet b1.58): the forward pass sees quantized
/// values, the backward pass is the straight-through estimator (the gradient passes unchanged, as if the
/// rounding were the identity). <c>lambda</c> blends float and quantized forward values,
/// x + λ·(q(x) − x), so a trained float model can be moved to full quantization gradually (λ: 0 → 1).
/// </summary>
public sealed partial class Tensor
{
    /// <summary>BitNet b1.58 weights: the absmean ternarization γ·t of the whole tensor (<see cref="BitNetQuantizer.Ternarize"/>).</summary>
    public Tensor TernaryWeightsSte(float lambda = 1f)
    {
        var w = Contiguous();
        var ws = w.Span;
        var trits = new sbyte[Numel];
        float gamma = BitNetQuantizer.Ternarize(ws, trits);
        var y = NewBuffer(Numel);
        for (int i = 0; i < y.Length; i++) y[i] = ws[i] + lambda * (trits[i] * gamma - ws[i]);
        return FromOp(y, Shape, [w], o => w.AccumulateGrad(o.Grad!));
    }

    /// <summary>BitNet b1.58 activations: absmax int8 per token, i.e. per row of the last axis (<see cref="BitNetQuantizer.QuantizeInt8"/>).</summary>
    public Tensor Int8ActivationsSte(float lambda = 1f)
    {
        var x = Contiguous();
        int n = Shape[^1], rows = Numel / Math.Max(n, 1);
        var y = NewBuffer(Numel);
        var q = new sbyte[n];
        for (int r = 0; r < rows; r++)
        {
            var row = x.Span.Slice(r * n, n);
            float step = BitNetQuantizer.QuantizeInt8(row, q);
            for (int j = 0; j < n; j++) y[r * n + j] = row[j] + lambda * (q[j] * step - row[j]);
        }
        return FromOp(y, Shape, [x], o => x.AccumulateGrad(o.Grad!));
    }
}
