namespace Coldmind.Tensors;

/// <summary>Softmax and log-softmax over the last axis (numerically stable: the row maximum is subtracted).</summary>
public sealed partial class Tensor
{
    public Tensor Softmax()
    {
        var x = Contiguous();
        int n = Shape[^1], rows = Numel / Math.Max(n, 1);
        var y = NewBuffer(Numel);
        for (int r = 0; r < rows; r++) SoftmaxRow(x.Span.Slice(r * n, n), y.AsSpan(r * n, n));
        return FromOp(y, Shape, [x], o =>
        {
            // dx = y ⊙ (dy − Σ dy·y)
            var gx = NewBuffer(x.Numel);
            for (int r = 0; r < rows; r++)
            {
                var yr = o.Storage.AsSpan(r * n, n);
                var gr = o.Grad.AsSpan(r * n, n);
                float dot = TensorPrimitives.Dot(gr, yr);
                var dst = gx.AsSpan(r * n, n);
                TensorPrimitives.Subtract(gr, dot, dst);
                TensorPrimitives.Multiply(dst, yr, dst);
            }
            x.AccumulateOwnedGrad(gx);
        });
    }

    public Tensor LogSoftmax()
    {
        var x = Contiguous();
        int n = Shape[^1], rows = Numel / Math.Max(n, 1);
        var y = NewBuffer(Numel);
        for (int r = 0; r < rows; r++) LogSoftmaxRow(x.Span.Slice(r * n, n), y.AsSpan(r * n, n));
        return FromOp(y, Shape, [x], o =>
        {
            // dx = dy − softmax ⊙ Σ dy
            var gx = NewBuffer(x.Numel);
            for (int r = 0; r < rows; r++)
            {
                var gr = o.Grad.AsSpan(r * n, n);
                float sum = TensorPrimitives.Sum(gr);
                var dst = gx.AsSpan(r * n, n);
                TensorPrimitives.Exp(o.Storage.AsSpan(r * n, n), dst);
                TensorPrimitives.Multiply(dst, -sum, dst);
                TensorPrimitives.Add(dst, gr, dst);
            }
            x.AccumulateOwnedGrad(gx);
        });
    }

    internal static void SoftmaxRow(ReadOnlySpan<float> x, Span<float> y)
    {
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, y);
        TensorPrimitives.Exp(y, y);
        TensorPrimitives.Divide(y, TensorPrimitives.Sum(y), y);
    }

    internal static void LogSoftmaxRow(ReadOnlySpan<float> x, Span<float> y)
    {
        float max = TensorPrimitives.Max(x);
        TensorPrimitives.Subtract(x, max, y);
        float logSum = 0;
        foreach (float v in y) logSum += MathF.Exp(v);
        TensorPrimitives.Subtract(y, MathF.Log(logSum), y);
    }
}
