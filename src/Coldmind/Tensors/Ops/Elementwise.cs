using System.Numerics;
using System.Runtime.InteropServices;
using Coldmind.Numerics;

namespace Coldmind.Tensors;

/// <summary>Element-wise binary ops with NumPy broadcasting, and unary ops and activations.</summary>
public sealed partial class Tensor
{
    private enum BinaryOp { Add, Sub, Mul, Div }

    public static Tensor operator +(Tensor a, Tensor b) => Binary(a, b, BinaryOp.Add);
    public static Tensor operator -(Tensor a, Tensor b) => Binary(a, b, BinaryOp.Sub);
    public static Tensor operator *(Tensor a, Tensor b) => Binary(a, b, BinaryOp.Mul);
    public static Tensor operator /(Tensor a, Tensor b) => Binary(a, b, BinaryOp.Div);
    public static Tensor operator -(Tensor a) => a.Scale(-1f);
    public static Tensor operator *(Tensor a, float s) => a.Scale(s);
    public static Tensor operator +(Tensor a, float s) => a.AddScalar(s);

    public Tensor Add(Tensor b) => Binary(this, b, BinaryOp.Add);
    public Tensor Sub(Tensor b) => Binary(this, b, BinaryOp.Sub);
    public Tensor Mul(Tensor b) => Binary(this, b, BinaryOp.Mul);
    public Tensor Div(Tensor b) => Binary(this, b, BinaryOp.Div);

    private static Tensor Binary(Tensor a, Tensor b, BinaryOp op)
    {
        var shape = Tensors.Shape.Broadcast(a.Shape, b.Shape);
        var y = NewBuffer(Tensors.Shape.Numel(shape));
        if (y.Length > 0)
        {
            var sa = Tensors.Shape.BroadcastStrides(a.Shape, a.Strides, shape);
            var sb = Tensors.Shape.BroadcastStrides(b.Shape, b.Strides, shape);
            int inner = shape.Length == 0 ? 1 : shape[^1];
            int ia = shape.Length == 0 ? 0 : sa[^1], ib = shape.Length == 0 ? 0 : sb[^1];
            var ra = RowOffsets(shape, sa, a.Offset);
            var rb = RowOffsets(shape, sb, b.Offset);
            for (int r = 0; r < ra.Length; r++)
                BinaryRow(op, a.Storage, ra[r], ia, b.Storage, rb[r], ib, y.AsSpan(r * inner, inner));
        }
        return FromOp(y, shape, [a, b], o =>
        {
            var g = o.Grad!;
            if (a.RequiresGrad)
            {
                float[] ga = op switch
                {
                    BinaryOp.Add or BinaryOp.Sub => g,
                    BinaryOp.Mul => Product(g, b.BroadcastValues(o.Shape)),
                    _ => Quotient(g, b.BroadcastValues(o.Shape)),
                };
                a.AccumulateGrad(SumToShape(ga, o.Shape, a.Shape));
            }
            if (b.RequiresGrad)
            {
                float[] gb;
                switch (op)
                {
                    case BinaryOp.Add: gb = g; break;
                    case BinaryOp.Sub: gb = new float[g.Length]; TensorPrimitives.Negate(g, gb); break;
                    case BinaryOp.Mul: gb = Product(g, a.BroadcastValues(o.Shape)); break;
                    default:
                        // d(a/b)/db = -(a/b)/b = -y/b
                        gb = Product(g, o.Storage);
                        TensorPrimitives.Divide(gb, b.BroadcastValues(o.Shape), gb);
                        TensorPrimitives.Negate(gb, gb);
                        break;
                }
                b.AccumulateGrad(SumToShape(gb, o.Shape, b.Shape));
            }
        });
    }

    private static float[] Product(float[] x, float[] y) { var r = NewBuffer(x.Length); TensorPrimitives.Multiply(x, y, r); return r; }
    private static float[] Quotient(float[] x, float[] y) { var r = NewBuffer(x.Length); TensorPrimitives.Divide(x, y, r); return r; }

    /// <summary>One output row: a and b are read with inner strides ia, ib (1 = dense, 0 = broadcast scalar).</summary>
    private static void BinaryRow(BinaryOp op, float[] a, int oa, int ia, float[] b, int ob, int ib, Span<float> y)
    {
        int n = y.Length;
        if (ia == 1 && ib == 1)
        {
            ReadOnlySpan<float> x = a.AsSpan(oa, n), z = b.AsSpan(ob, n);
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(x, z, y); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(x, z, y); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(x, z, y); break;
                default: TensorPrimitives.Divide(x, z, y); break;
            }
        }
        else if (ia == 1 && ib == 0)
        {
            ReadOnlySpan<float> x = a.AsSpan(oa, n);
            float s = b[ob];
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(x, s, y); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(x, s, y); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(x, s, y); break;
                default: TensorPrimitives.Divide(x, s, y); break;
            }
        }
        else if (ia == 0 && ib == 1)
        {
            float s = a[oa];
            ReadOnlySpan<float> z = b.AsSpan(ob, n);
            switch (op)
            {
                case BinaryOp.Add: TensorPrimitives.Add(z, s, y); break;
                case BinaryOp.Sub: TensorPrimitives.Subtract(s, z, y); break;
                case BinaryOp.Mul: TensorPrimitives.Multiply(z, s, y); break;
                default: TensorPrimitives.Divide(s, z, y); break;
            }
        }
        else
        {
            for (int j = 0; j < n; j++)
            {
                float x = a[oa + j * ia], z = b[ob + j * ib];
                y[j] = op switch { BinaryOp.Add => x + z, BinaryOp.Sub => x - z, BinaryOp.Mul => x * z, _ => x / z };
            }
        }
    }

    // ---- unary ops ------------------------------------------------------------------------

    /// <summary>
    /// An element-wise op y = f(x). <paramref name="backward"/> gets (x, y, dy) and writes dx;
    /// x and y are dense row-major views of the input and output. Large tensors are processed in
    /// chunks on the worker pool; chunks start at multiples of 64, so every element takes the same
    /// vector or tail path as in a single pass and the result does not depend on the thread count.
    /// </summary>
    private Tensor Unary(SpanAction forward, BackwardRule backward)
    {
        var x = IsContiguous ? this : Detach();
        var y = NewBuffer(Numel);
        float[] xs = x.Storage;
        int xo = x.Offset;
        InChunks(Numel, (start, n) => forward(xs.AsSpan(xo + start, n), y.AsSpan(start, n)));
        var input = this;
        return FromOp(y, Shape, [this], o =>
        {
            var gx = NewBuffer(o.Numel);
            float[] ys = o.Storage, dy = o.Grad!;
            InChunks(o.Numel, (start, n) => backward(xs.AsSpan(xo + start, n), ys.AsSpan(start, n), dy.AsSpan(start, n), gx.AsSpan(start, n)));
            input.AccumulateOwnedGrad(gx);
        });
    }

    private const int ParallelElements = 1 << 15;

    /// <summary>body(start, length) over [0, n): one call, or one contiguous chunk per worker when n is large.</summary>
    private static void InChunks(int n, Action<int, int> body)
    {
        var pool = WorkerPool.Shared;
        int parts = pool.AvailableThreads;
        if (n < ParallelElements || parts == 1) { body(0, n); return; }
        int chunk = (n / parts + 63) / 64 * 64;
        pool.Run(parts, p =>
        {
            int start = Math.Min(p * chunk, n);
            body(start, Math.Min(chunk, n - start));
        });
    }

    private delegate void SpanAction(ReadOnlySpan<float> x, Span<float> y);
    private delegate void BackwardRule(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx);

    public Tensor Scale(float s) => Unary(
        (x, y) => TensorPrimitives.Multiply(x, s, y),
        (x, y, dy, dx) => TensorPrimitives.Multiply(dy, s, dx));

    public Tensor AddScalar(float s) => Unary(
        (x, y) => TensorPrimitives.Add(x, s, y),
        (x, y, dy, dx) => dy.CopyTo(dx));

    public Tensor Exp() => Unary(
        (x, y) => TensorPrimitives.Exp(x, y),
        (x, y, dy, dx) => TensorPrimitives.Multiply(dy, y, dx));

    public Tensor Log() => Unary(
        (x, y) => TensorPrimitives.Log(x, y),
        (x, y, dy, dx) => TensorPrimitives.Divide(dy, x, dx));

    public Tensor Sqrt() => Unary(
        (x, y) => TensorPrimitives.Sqrt(x, y),
        (x, y, dy, dx) => { TensorPrimitives.Divide(dy, y, dx); TensorPrimitives.Multiply(dx, 0.5f, dx); });

    public Tensor Square() => Unary(
        (x, y) => TensorPrimitives.Multiply(x, x, y),
        (x, y, dy, dx) => { TensorPrimitives.Multiply(dy, x, dx); TensorPrimitives.Multiply(dx, 2f, dx); });

    public Tensor Relu() => Unary(
        (x, y) => TensorPrimitives.Max(x, 0f, y),
        (x, y, dy, dx) => PassWherePositive(x, dy, dx));

    /// <summary>relu(x)², the FFN activation of BitNet b1.58 2B4T.</summary>
    public Tensor SquaredRelu() => Unary(
        (x, y) => { TensorPrimitives.Max(x, 0f, y); TensorPrimitives.Multiply(y, y, y); },
        (x, y, dy, dx) => { TensorPrimitives.Max(x, 0f, dx); TensorPrimitives.Multiply(dx, dy, dx); TensorPrimitives.Multiply(dx, 2f, dx); });

    /// <summary>dx = dy where x &gt; 0, else 0 — branch-free, since the sign pattern of activations is unpredictable.</summary>
    private static void PassWherePositive(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var xs = MemoryMarshal.Cast<float, Vector<float>>(x);
            var gs = MemoryMarshal.Cast<float, Vector<float>>(dy);
            var ds = MemoryMarshal.Cast<float, Vector<float>>(dx);
            for (int k = 0; k < ds.Length; k++)
                ds[k] = Vector.ConditionalSelect(Vector.GreaterThan(xs[k], Vector<float>.Zero), gs[k], Vector<float>.Zero);
            i = ds.Length * Vector<float>.Count;
        }
        for (; i < dx.Length; i++) dx[i] = x[i] > 0 ? dy[i] : 0f;
    }

    public Tensor Sigmoid() => Unary(
        (x, y) => TensorPrimitives.Sigmoid(x, y),
        (x, y, dy, dx) => { for (int i = 0; i < dx.Length; i++) dx[i] = dy[i] * y[i] * (1f - y[i]); });

    public Tensor Tanh() => Unary(
        (x, y) => TensorPrimitives.Tanh(x, y),
        (x, y, dy, dx) => { for (int i = 0; i < dx.Length; i++) dx[i] = dy[i] * (1f - y[i] * y[i]); });

    /// <summary>x·σ(x) (SiLU / swish), the gate of LLaMA's FFN.</summary>
    public Tensor Silu() => Unary(
        (x, y) => { TensorPrimitives.Sigmoid(x, y); TensorPrimitives.Multiply(x, y, y); },
        (x, y, dy, dx) =>
        {
            for (int i = 0; i < dx.Length; i++)
            {
                float s = 1f / (1f + MathF.Exp(-x[i]));
                dx[i] = dy[i] * s * (1f + x[i] * (1f - s));
            }
        });

    private const float GeluC = 0.7978845608f; // √(2/π)

    /// <summary>GELU, tanh form: ½x(1 + tanh(√(2/π)(x + 0.044715x³))), as GPT-2 and ggml compute it.</summary>
    public Tensor Gelu() => Unary(
        (x, y) =>
        {
            for (int i = 0; i < y.Length; i++)
            {
                float v = x[i];
                y[i] = 0.5f * v * (1f + MathF.Tanh(GeluC * (v + 0.044715f * v * v * v)));
            }
        },
        (x, y, dy, dx) =>
        {
            for (int i = 0; i < dx.Length; i++)
            {
                float v = x[i];
                float t = MathF.Tanh(GeluC * (v + 0.044715f * v * v * v));
                float dt = (1f - t * t) * GeluC * (1f + 3f * 0.044715f * v * v);
                dx[i] = dy[i] * (0.5f * (1f + t) + 0.5f * v * dt);
            }
        });

    /// <summary>Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1−p).</summary>
    public Tensor Dropout(float p, Rng rng)
    {
        if (p < 0 || p >= 1) throw new ColdmindException($"Dropout probability must be in [0, 1), got {p}.");
        if (p == 0) return this;
        var mask = new float[Numel];
        float keep = 1f / (1f - p);
        for (int i = 0; i < mask.Length; i++) mask[i] = rng.NextFloat() >= p ? keep : 0f;
        return this * FromArray(mask, Shape);
    }
}
