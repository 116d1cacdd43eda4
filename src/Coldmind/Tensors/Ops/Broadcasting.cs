namespace Coldmind.Tensors;

public sealed partial class Tensor
{
    /// <summary>
    /// Base offset of every row (all indices but the last) of a strided view of <paramref name="shape"/>:
    /// the walk every broadcasting loop shares, so each loop body is a plain row operation.
    /// </summary>
    internal static int[] RowOffsets(int[] shape, int[] strides, int offset)
    {
        int rank = shape.Length;
        if (rank == 0) return [offset];
        int rows = 1;
        for (int i = 0; i < rank - 1; i++) rows *= shape[i];
        var result = new int[rows];
        if (rows == 0) return result;
        var idx = new int[rank];
        int o = offset;
        for (int r = 0; r < rows; r++)
        {
            result[r] = o;
            for (int i = rank - 2; i >= 0; i--)
            {
                o += strides[i];
                if (++idx[i] < shape[i]) break;
                o -= strides[i] * shape[i];
                idx[i] = 0;
            }
        }
        return result;
    }

    /// <summary>This tensor's values broadcast to <paramref name="shape"/>, as a dense row-major array.</summary>
    internal float[] BroadcastValues(int[] shape)
    {
        if (IsContiguous && Tensors.Shape.SameShape(Shape, shape)) return Storage.AsSpan(Offset, Numel).ToArray();
        var strides = Tensors.Shape.BroadcastStrides(Shape, Strides, shape);
        var result = NewBuffer(Tensors.Shape.Numel(shape));
        if (result.Length == 0) return result;
        int inner = shape.Length == 0 ? 1 : shape[^1], si = shape.Length == 0 ? 0 : strides[^1];
        var rows = RowOffsets(shape, strides, Offset);
        for (int r = 0; r < rows.Length; r++)
        {
            var dst = result.AsSpan(r * inner, inner);
            if (si == 1) Storage.AsSpan(rows[r], inner).CopyTo(dst);
            else if (si == 0) dst.Fill(Storage[rows[r]]);
            else for (int j = 0; j < inner; j++) dst[j] = Storage[rows[r] + j * si];
        }
        return result;
    }

    /// <summary>Sums a dense gradient of shape <paramref name="from"/> down to <paramref name="to"/> (undoing a broadcast).</summary>
    internal static float[] SumToShape(float[] g, int[] from, int[] to)
    {
        if (Tensors.Shape.SameShape(from, to)) return g;
        var result = new float[Tensors.Shape.Numel(to)];
        var strides = Tensors.Shape.BroadcastStrides(to, Tensors.Shape.ContiguousStrides(to), from);
        int inner = from.Length == 0 ? 1 : from[^1], si = from.Length == 0 ? 0 : strides[^1];
        var rows = RowOffsets(from, strides, 0);
        for (int r = 0; r < rows.Length; r++)
        {
            var src = g.AsSpan(r * inner, inner);
            if (si == 1) TensorPrimitives.Add(result.AsSpan(rows[r], inner), src, result.AsSpan(rows[r], inner));
            else if (si == 0) result[rows[r]] += TensorPrimitives.Sum(src);
            else for (int j = 0; j < inner; j++) result[rows[r] + j * si] += src[j];
        }
        return result;
    }
}
