namespace Coldmind.Tensors;

/// <summary>Ops that rearrange values: views (reshape, transpose, permute, slice) and copies (concat, gather).</summary>
public sealed partial class Tensor
{
    /// <summary>Same values, new shape (one dimension may be −1). A view when contiguous.</summary>
    public Tensor Reshape(params int[] shape)
    {
        shape = (int[])shape.Clone();
        int infer = Array.IndexOf(shape, -1);
        if (infer >= 0)
        {
            int known = 1;
            for (int i = 0; i < shape.Length; i++) if (i != infer) known *= shape[i];
            if (known == 0 || Numel % known != 0)
                throw new ColdmindException($"Cannot reshape {Tensors.Shape.Format(Shape)} to {Tensors.Shape.Format(shape)}.");
            shape[infer] = Numel / known;
        }
        if (Tensors.Shape.Numel(shape) != Numel)
            throw new ColdmindException($"Cannot reshape {Tensors.Shape.Format(Shape)} ({Numel} values) to {Tensors.Shape.Format(shape)}.");
        var x = Contiguous();
        return x.ViewOp(shape, Tensors.Shape.ContiguousStrides(shape), x.Offset, o => x.AccumulateGrad(o.Grad!));
    }

    /// <summary>Swaps two axes (a view).</summary>
    public Tensor Transpose(int axis0 = -2, int axis1 = -1)
    {
        var perm = Enumerable.Range(0, Rank).ToArray();
        int a = Tensors.Shape.Axis(axis0, Rank), b = Tensors.Shape.Axis(axis1, Rank);
        (perm[a], perm[b]) = (perm[b], perm[a]);
        return Permute(perm);
    }

    /// <summary>Reorders axes: result axis i is this tensor's axis perm[i] (a view).</summary>
    public Tensor Permute(params int[] perm)
    {
        if (perm.Length != Rank || perm.Distinct().Count() != Rank || perm.Any(p => p < 0 || p >= Rank))
            throw new ColdmindException($"Permutation [{string.Join(", ", perm)}] does not fit rank {Rank}.");
        var shape = perm.Select(p => Shape[p]).ToArray();
        var strides = perm.Select(p => Strides[p]).ToArray();
        var inverse = new int[Rank];
        for (int i = 0; i < Rank; i++) inverse[perm[i]] = i;
        var x = this;
        return ViewOp(shape, strides, Offset, o =>
        {
            // Scatter the dense gradient back through the inverse permutation.
            var g = new Tensor(o.Grad!, o.Shape).Permute(inverse);
            x.AccumulateGrad(g.ToArray());
        });
    }

    /// <summary>The window [start, start+length) along an axis (a view).</summary>
    public Tensor Slice(int axis, int start, int length)
    {
        axis = Tensors.Shape.Axis(axis, Rank);
        if (start < 0 || length < 0 || start + length > Shape[axis])
            throw new ColdmindException($"Slice [{start}, {start + length}) is outside axis {axis} of size {Shape[axis]}.");
        var shape = (int[])Shape.Clone();
        shape[axis] = length;
        var x = this;
        return ViewOp(shape, Strides, Offset + start * Strides[axis], o =>
        {
            if (!x.RequiresGrad) return;
            var gx = x.GradBuffer();
            var xStrides = Tensors.Shape.ContiguousStrides(x.Shape);
            AddStrided(o.Grad!, gx, start * xStrides[axis], o.Shape, xStrides);
        });
    }

    /// <summary>Joins tensors along an axis; all other sizes must agree.</summary>
    public static Tensor Concat(int axis, params Tensor[] parts)
    {
        if (parts.Length == 0) throw new ColdmindException("Concat of no tensors.");
        int rank = parts[0].Rank;
        axis = Tensors.Shape.Axis(axis, rank);
        var shape = (int[])parts[0].Shape.Clone();
        shape[axis] = 0;
        foreach (var p in parts)
        {
            for (int i = 0; i < rank; i++)
                if (p.Rank != rank || (i != axis && p.Shape[i] != parts[0].Shape[i]))
                    throw new ColdmindException($"Concat along axis {axis}: {Tensors.Shape.Format(p.Shape)} does not match {Tensors.Shape.Format(parts[0].Shape)}.");
            shape[axis] += p.Shape[axis];
        }
        var y = NewBuffer(Tensors.Shape.Numel(shape));
        int outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= shape[i];
        for (int i = axis + 1; i < rank; i++) inner *= shape[i];
        int rowLen = shape[axis] * inner;
        var dense = parts.Select(p => p.Contiguous()).ToArray();
        int at = 0;
        foreach (var p in dense)
        {
            int chunk = p.Shape[axis] * inner;
            var src = p.Span;
            for (int o = 0; o < outer; o++) src.Slice(o * chunk, chunk).CopyTo(y.AsSpan(o * rowLen + at, chunk));
            at += chunk;
        }
        return FromOp(y, shape, dense, o =>
        {
            int from = 0;
            foreach (var p in dense)
            {
                int chunk = p.Shape[axis] * inner;
                if (p.RequiresGrad)
                {
                    var gp = NewBuffer(p.Numel);
                    for (int b = 0; b < outer; b++) o.Grad.AsSpan(b * rowLen + from, chunk).CopyTo(gp.AsSpan(b * chunk, chunk));
                    p.AccumulateGrad(gp);
                }
                from += chunk;
            }
        });
    }

    /// <summary>Rows of this (n, …) tensor picked by index: result (indices.Length, …).</summary>
    public Tensor Gather(int[] indices)
    {
        if (Rank == 0) throw new ColdmindException("Gather needs a tensor of rank ≥ 1.");
        var x = Contiguous();
        int rows = Shape[0], row = rows == 0 ? 0 : Numel / rows;
        var y = NewBuffer(indices.Length * row);
        for (int i = 0; i < indices.Length; i++)
        {
            if ((uint)indices[i] >= (uint)rows) throw new ColdmindException($"Index {indices[i]} is out of range for {rows} rows.");
            x.Span.Slice(indices[i] * row, row).CopyTo(y.AsSpan(i * row, row));
        }
        var shape = (int[])Shape.Clone();
        shape[0] = indices.Length;
        return FromOp(y, shape, [x], o =>
        {
            var gx = x.GradBuffer();
            var g = o.Grad!;
            for (int i = 0; i < indices.Length; i++)
            {
                var dst = gx.AsSpan(indices[i] * row, row);
                TensorPrimitives.Add(dst, g.AsSpan(i * row, row), dst);
            }
        });
    }

    /// <summary>Embedding lookup: weight (vocab, dim) at ids of shape idsShape → (idsShape…, dim).</summary>
    public static Tensor Embedding(Tensor weight, int[] ids, params int[] idsShape)
    {
        if (weight.Rank != 2) throw new ColdmindException($"Embedding weight must be (vocab, dim), got {Tensors.Shape.Format(weight.Shape)}.");
        if (Tensors.Shape.Numel(idsShape) != ids.Length) throw new ColdmindException($"{ids.Length} ids do not fill shape {Tensors.Shape.Format(idsShape)}.");
        return weight.Gather(ids).Reshape([.. idsShape, weight.Shape[1]]);
    }
}
