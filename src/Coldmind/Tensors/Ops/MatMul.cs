using Coldmind.Kernels;

namespace Coldmind.Tensors;

/// <summary>Matrix products on the GEMM kernel: batched matmul and the fused linear layer.</summary>
public sealed partial class Tensor
{
    /// <summary>
    /// a (…, m, k) @ b (…, k, n) → (…, m, n); batch dimensions broadcast. Views (transposes, slices)
    /// are read through their strides, never copied.
    /// </summary>
    public Tensor MatMul(Tensor b)
    {
        var a = this;
        if (a.Rank < 2 || b.Rank < 2)
            throw new ColdmindException($"MatMul needs rank ≥ 2 operands, got {Tensors.Shape.Format(a.Shape)} @ {Tensors.Shape.Format(b.Shape)}.");
        int m = a.Shape[^2], k = a.Shape[^1], n = b.Shape[^1];
        if (b.Shape[^2] != k)
            throw new ColdmindException($"MatMul shapes {Tensors.Shape.Format(a.Shape)} @ {Tensors.Shape.Format(b.Shape)}: inner sizes {k} and {b.Shape[^2]} differ.");
        // (…, m, k) @ (k, n) on a dense a is one GEMM with the batch folded into m.
        if (b.Rank == 2 && a.Rank > 2 && a.IsContiguous)
        {
            var folded = a.Reshape(-1, k).MatMul(b);
            return folded.Reshape([.. a.Shape[..^1], n]);
        }
        var batch = Tensors.Shape.Broadcast(a.Shape[..^2], b.Shape[..^2]);
        var aOff = BatchOffsets(batch, a.Shape[..^2], a.Strides[..^2], a.Offset);
        var bOff = BatchOffsets(batch, b.Shape[..^2], b.Strides[..^2], b.Offset);
        int count = aOff.Length;
        var y = NewBuffer(count * m * n);
        int rsA = a.Strides[^2], csA = a.Strides[^1], rsB = b.Strides[^2], csB = b.Strides[^1];
        unsafe
        {
            fixed (float* pa = a.Storage, pb = b.Storage, py = y)
                for (int i = 0; i < count; i++)
                    Gemm.Multiply(m, n, k, pa + aOff[i], rsA, csA, pb + bOff[i], rsB, csB, py + (long)i * m * n, n, accumulate: false);
        }
        return FromOp(y, [.. batch, m, n], [a, b], o =>
        {
            unsafe
            {
                fixed (float* pg = o.Grad, pa = a.Storage, pb = b.Storage)
                {
                    if (a.RequiresGrad)
                    {
                        // dA (m,k) += dY (m,n) @ B^T (n,k), summed over broadcast batches.
                        var dOff = BatchOffsets(batch, a.Shape[..^2], Tensors.Shape.ContiguousStrides(a.Shape)[..^2], 0);
                        fixed (float* pd = a.GradBuffer())
                            for (int i = 0; i < count; i++)
                                Gemm.Multiply(m, k, n, pg + (long)i * m * n, n, 1, pb + bOff[i], csB, rsB, pd + dOff[i], k, accumulate: true);
                    }
                    if (b.RequiresGrad)
                    {
                        // dB (k,n) += A^T (k,m) @ dY (m,n)
                        var dOff = BatchOffsets(batch, b.Shape[..^2], Tensors.Shape.ContiguousStrides(b.Shape)[..^2], 0);
                        fixed (float* pd = b.GradBuffer())
                            for (int i = 0; i < count; i++)
                                Gemm.Multiply(k, n, m, pa + aOff[i], csA, rsA, pg + (long)i * m * n, n, 1, pd + dOff[i], n, accumulate: true);
                    }
                }
            }
        });
    }

    /// <summary>Storage offset of each matrix of a (possibly broadcast) batch, in row-major batch order.</summary>
    private static int[] BatchOffsets(int[] batch, int[] shape, int[] strides, int offset)
    {
        var s = Tensors.Shape.BroadcastStrides(shape, strides, batch);
        return RowOffsets([.. batch, 1], [.. s, 0], offset);
    }

    /// <summary>
    /// The linear layer y = x @ W^T + b, fused: x (…, in), weight (out, in) as PyTorch and GGUF store it,
    /// bias (out) or null → y (…, out). The backward pass writes dW = dY^T @ X straight into W's gradient.
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        int outF = weight.Shape[0], inF = weight.Shape[^1];
        if (weight.Rank != 2 || x.Rank < 1 || x.Shape[^1] != inF)
            throw new ColdmindException($"Linear: input {Tensors.Shape.Format(x.Shape)} does not fit weight {Tensors.Shape.Format(weight.Shape)} (out, in).");
        if (bias != null && (bias.Rank != 1 || bias.Shape[0] != outF))
            throw new ColdmindException($"Linear: bias {Tensors.Shape.Format(bias.Shape)} does not fit {outF} outputs.");
        var xc = x.Contiguous();
        var w = weight.Contiguous();
        int rows = xc.Numel / Math.Max(inF, 1);
        var y = NewBuffer(rows * outF);
        unsafe
        {
            fixed (float* px = xc.Storage, pw = w.Storage, py = y)
                Gemm.Multiply(rows, outF, inF, px + xc.Offset, inF, 1, pw + w.Offset, 1, inF, py, outF, accumulate: false);
        }
        if (bias != null)
        {
            var bs = bias.Contiguous().Span;
            for (int r = 0; r < rows; r++) TensorPrimitives.Add(y.AsSpan(r * outF, outF), bs, y.AsSpan(r * outF, outF));
        }
        Tensor[] parents = bias == null ? [xc, w] : [xc, w, bias];
        return FromOp(y, [.. x.Shape[..^1], outF], parents, o =>
        {
            var g = o.Grad!;
            unsafe
            {
                fixed (float* pg = g, px = xc.Storage, pw = w.Storage)
                {
                    if (xc.RequiresGrad)
                        fixed (float* pd = xc.GradBuffer()) // dX (rows,in) += dY (rows,out) @ W (out,in)
                            Gemm.Multiply(rows, inF, outF, pg, outF, 1, pw + w.Offset, inF, 1, pd, inF, accumulate: true);
                    if (w.RequiresGrad)
                        fixed (float* pd = w.GradBuffer()) // dW (out,in) += dY^T (out,rows) @ X (rows,in)
                            Gemm.Multiply(outF, inF, rows, pg, 1, outF, px + xc.Offset, inF, 1, pd, inF, accumulate: true);
                }
            }
            if (bias != null && bias.RequiresGrad)
            {
                var db = new float[outF];
                for (int r = 0; r < rows; r++) TensorPrimitives.Add(db, g.AsSpan(r * outF, outF), db);
                bias.AccumulateGrad(db);
            }
        });
    }
}
