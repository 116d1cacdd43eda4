namespace Coldmind.Tensors;

/// <summary>Sum, mean and max over one axis or over everything.</summary>
public sealed partial class Tensor
{
    /// <summary>(outer, len, inner) of this shape around <paramref name="axis"/>.</summary>
    private (int Outer, int Len, int Inner) AroundAxis(int axis)
    {
        int outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= Shape[i];
        for (int i = axis + 1; i < Rank; i++) inner *= Shape[i];
        return (outer, Shape[axis], inner);
    }

    private int[] ReducedShape(int axis, bool keepDim)
    {
        if (keepDim) { var s = (int[])Shape.Clone(); s[axis] = 1; return s; }
        return Shape.Where((_, i) => i != axis).ToArray();
    }

    public Tensor Sum(int axis, bool keepDim = false) => SumOrMean(axis, keepDim, mean: false);
    public Tensor Mean(int axis, bool keepDim = false) => SumOrMean(axis, keepDim, mean: true);

    private Tensor SumOrMean(int axis, bool keepDim, bool mean)
    {
        axis = Tensors.Shape.Axis(axis, Rank);
        var x = Contiguous();
        var (outer, len, inner) = AroundAxis(axis);
        float scale = mean ? 1f / len : 1f;
        var y = new float[outer * inner];
        var xs = x.Span;
        for (int o = 0; o < outer; o++)
        {
            var dst = y.AsSpan(o * inner, inner);
            for (int a = 0; a < len; a++) TensorPrimitives.Add(dst, xs.Slice((o * len + a) * inner, inner), dst);
            if (mean) TensorPrimitives.Multiply(dst, scale, dst);
        }
        return FromOp(y, ReducedShape(axis, keepDim), [x], o =>
        {
            var g = o.Grad!;
            var gx = NewBuffer(outer * len * inner);
            for (int b = 0; b < outer; b++)
                for (int a = 0; a < len; a++)
                    TensorPrimitives.Multiply(g.AsSpan(b * inner, inner), scale, gx.AsSpan((b * len + a) * inner, inner));
            x.AccumulateOwnedGrad(gx);
        });
    }

    /// <summary>Maximum over an axis; the gradient goes to the first maximal element.</summary>
    public Tensor Max(int axis, bool keepDim = false)
    {
        axis = Tensors.Shape.Axis(axis, Rank);
        var x = Contiguous();
        var (outer, len, inner) = AroundAxis(axis);
        if (len == 0) throw new ColdmindException("Max over an empty axis.");
        var y = new float[outer * inner];
        var arg = new int[outer * inner];
        var xs = x.Span;
        for (int o = 0; o < outer; o++)
            for (int i = 0; i < inner; i++)
            {
                int best = 0;
                float m = xs[o * len * inner + i];
                for (int a = 1; a < len; a++)
                {
                    float v = xs[(o * len + a) * inner + i];
                    if (v > m) { m = v; best = a; }
                }
                y[o * inner + i] = m;
                arg[o * inner + i] = best;
            }
        return FromOp(y, ReducedShape(axis, keepDim), [x], o =>
        {
            var g = o.Grad!;
            var gx = x.GradBuffer();
            for (int b = 0; b < outer; b++)
                for (int i = 0; i < inner; i++)
                    gx[(b * len + arg[b * inner + i]) * inner + i] += g[b * inner + i];
        });
    }

    public Tensor Sum()
    {
        var x = Contiguous();
        float s = TensorPrimitives.Sum(x.Span);
        return FromOp([s], [], [x], o =>
        {
            var gx = NewBuffer(x.Numel);
            gx.AsSpan().Fill(o.Grad![0]);
            x.AccumulateOwnedGrad(gx);
        });
    }

    public Tensor Mean() => Sum().Scale(1f / Math.Max(Numel, 1));
}
