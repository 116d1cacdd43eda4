namespace Coldmind.Tensors;

/// <summary>RMSNorm and LayerNorm over the last axis, fused with their affine weights.</summary>
public sealed partial class Tensor
{
    /// <summary>y = x / √(mean(x²) + ε) ⊙ weight; x (…, d), weight (d).</summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, float eps = 1e-6f) => Normalize(x, weight, null, eps, centre: false);

    /// <summary>y = (x − mean) / √(var + ε) ⊙ weight + bias; x (…, d), weight and bias (d).</summary>
    public static Tensor LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps = 1e-5f) => Normalize(x, weight, bias, eps, centre: true);

    private static Tensor Normalize(Tensor x, Tensor weight, Tensor? bias, float eps, bool centre)
    {
        int d = x.Shape[^1];
        if (weight.Rank != 1 || weight.Shape[0] != d || (bias != null && (bias.Rank != 1 || bias.Shape[0] != d)))
            throw new ColdmindException($"Norm weight {Tensors.Shape.Format(weight.Shape)} does not fit input {Tensors.Shape.Format(x.Shape)}.");
        var xc = x.Contiguous();
        var w = weight.Contiguous();
        var b = bias?.Contiguous();
        int rows = xc.Numel / Math.Max(d, 1);
        var xhat = NewBuffer(xc.Numel);
        var inv = new float[rows];
        var y = NewBuffer(xc.Numel);
        for (int r = 0; r < rows; r++)
        {
            var src = xc.Span.Slice(r * d, d);
            var h = xhat.AsSpan(r * d, d);
            float mean = centre ? TensorPrimitives.Sum(src) / d : 0f;
            TensorPrimitives.Subtract(src, mean, h);
            float ms = TensorPrimitives.Dot(h, h) / d;
            inv[r] = 1f / MathF.Sqrt(ms + eps);
            TensorPrimitives.Multiply(h, inv[r], h);
            var dst = y.AsSpan(r * d, d);
            TensorPrimitives.Multiply(h, w.Span, dst);
            if (b != null) TensorPrimitives.Add(dst, b.Span, dst);
        }
        Tensor[] parents = bias == null ? [xc, w] : [xc, w, bias];
        return FromOp(y, x.Shape, parents, o =>
        {
            var g = o.Grad!;
            var gw = w.RequiresGrad ? new float[d] : null;
            var gb = bias is { RequiresGrad: true } ? new float[d] : null;
            var gx = xc.RequiresGrad ? NewBuffer(xc.Numel) : null;
            var gh = new float[d];
            for (int r = 0; r < rows; r++)
            {
                var gr = g.AsSpan(r * d, d);
                var h = xhat.AsSpan(r * d, d);
                if (gw != null) TensorPrimitives.FusedMultiplyAdd(gr, h, gw, gw);
                if (gb != null) TensorPrimitives.Add(gb, gr, gb);
                if (gx == null) continue;
                // gh = dy ⊙ w; dx = inv · (gh − mean(gh)·[centre] − x̂ · mean(gh ⊙ x̂))
                TensorPrimitives.Multiply(gr, w.Span, gh);
                float meanG = centre ? TensorPrimitives.Sum(gh) / d : 0f;
                float meanGh = TensorPrimitives.Dot(gh, h) / d;
                var dst = gx.AsSpan(r * d, d);
                TensorPrimitives.Multiply(h, -meanGh, dst);
                TensorPrimitives.Add(dst, gh, dst);
                TensorPrimitives.Subtract(dst, meanG, dst);
                TensorPrimitives.Multiply(dst, inv[r], dst);
            }
            if (gx != null) xc.AccumulateGrad(gx);
            if (gw != null) w.AccumulateGrad(gw);
            if (gb != null) bias!.AccumulateGrad(gb);
        });
    }
}
