using System.Runtime.CompilerServices;

namespace Coldmind.Tensors;

/// <summary>
/// A float32 tensor: a window (<see cref="Offset"/>, <see cref="Shape"/>, <see cref="Strides"/>) on a
/// storage array that views share. Reverse-mode autodiff: an op's result remembers its parents and a
/// backward function that adds the parents' gradients; <see cref="Backward"/> runs them in reverse
/// topological order. <see cref="Grad"/> is always contiguous in this tensor's logical row-major order.
/// </summary>
public sealed partial class Tensor
{
    public float[] Storage { get; }
    public int Offset { get; }
    public int[] Shape { get; }
    public int[] Strides { get; }
    public int Numel { get; }
    public bool IsContiguous { get; }

    /// <summary>True for parameters and for results of ops on them while gradients are recorded.</summary>
    public bool RequiresGrad { get; private set; }

    /// <summary>d(loss)/d(this), row-major over <see cref="Shape"/>; null until a gradient reaches it.</summary>
    public float[]? Grad { get; private set; }

    private Tensor[]? _parents;
    private Action<Tensor>? _backward;

    public int Rank => Shape.Length;

    public Tensor(float[] storage, int[] shape, int[]? strides = null, int offset = 0)
    {
        Storage = storage;
        Shape = shape;
        Numel = Tensors.Shape.Numel(shape);
        Strides = strides ?? Tensors.Shape.ContiguousStrides(shape);
        Offset = offset;
        IsContiguous = strides == null || Strides.AsSpan().SequenceEqual(Tensors.Shape.ContiguousStrides(shape));
        if (IsContiguous && offset + Numel > storage.Length)
            throw new ColdmindException($"Storage of {storage.Length} floats is too small for shape {Tensors.Shape.Format(shape)} at offset {offset}.");
    }

    // ---- creation -------------------------------------------------------------------------

    public static Tensor Zeros(params int[] shape) => new(new float[Tensors.Shape.Numel(shape)], shape);

    public static Tensor Full(float value, params int[] shape)
    {
        var t = Zeros(shape);
        t.Storage.AsSpan().Fill(value);
        return t;
    }

    public static Tensor FromArray(float[] data, params int[] shape)
    {
        if (Tensors.Shape.Numel(shape) != data.Length)
            throw new ColdmindException($"{data.Length} values do not fill shape {Tensors.Shape.Format(shape)}.");
        return new Tensor(data, shape);
    }

    public static Tensor Uniform(Rng rng, float low, float high, params int[] shape)
    {
        var t = Zeros(shape);
        var s = t.Storage;
        for (int i = 0; i < s.Length; i++) s[i] = low + (high - low) * rng.NextFloat();
        return t;
    }

    public static Tensor Normal(Rng rng, float std, params int[] shape)
    {
        var t = Zeros(shape);
        var s = t.Storage;
        for (int i = 0; i < s.Length; i++) s[i] = std * rng.NextNormal();
        return t;
    }

    /// <summary>Marks this leaf as a trainable parameter (gradients will be accumulated into it).</summary>
    public Tensor AsParameter()
    {
        if (_backward != null) throw new InvalidOperationException("Only a leaf tensor can be a parameter.");
        RequiresGrad = true;
        return this;
    }

    // ---- data access ------------------------------------------------------------------------

    /// <summary>The values of a contiguous tensor, in place (no copy).</summary>
    public Span<float> Span
    {
        get
        {
            if (!IsContiguous) throw new InvalidOperationException("Span needs a contiguous tensor; call Contiguous() first.");
            return Storage.AsSpan(Offset, Numel);
        }
    }

    /// <summary>The values in row-major order (a copy for views).</summary>
    public float[] ToArray()
    {
        if (IsContiguous) return Storage.AsSpan(Offset, Numel).ToArray();
        var result = new float[Numel];
        CopyStridedTo(result);
        return result;
    }

    public float Item()
    {
        if (Numel != 1) throw new InvalidOperationException($"Item() needs one element, the tensor has shape {Tensors.Shape.Format(Shape)}.");
        return Storage[Offset];
    }

    [IndexerName("At")]
    public float this[params int[] index]
    {
        get => Storage[FlatIndex(index)];
        set => Storage[FlatIndex(index)] = value;
    }

    private int FlatIndex(int[] index)
    {
        if (index.Length != Rank) throw new ArgumentException($"Index of rank {index.Length} for a tensor of rank {Rank}.");
        int o = Offset;
        for (int i = 0; i < index.Length; i++)
        {
            if ((uint)index[i] >= (uint)Shape[i]) throw new IndexOutOfRangeException();
            o += index[i] * Strides[i];
        }
        return o;
    }

    /// <summary>Copies a (possibly strided) window into a dense row-major buffer.</summary>
    internal void CopyStridedTo(Span<float> dst)
    {
        if (Numel == 0) return;
        if (IsContiguous) { Storage.AsSpan(Offset, Numel).CopyTo(dst); return; }
        int rank = Rank;
        int inner = Shape[rank - 1], innerStride = Strides[rank - 1];
        var idx = new int[rank];
        int outer = Numel / Math.Max(inner, 1);
        for (int o = 0, d = 0; o < outer; o++)
        {
            int src = Offset;
            for (int i = 0; i < rank - 1; i++) src += idx[i] * Strides[i];
            if (innerStride == 1) Storage.AsSpan(src, inner).CopyTo(dst.Slice(d, inner));
            else for (int j = 0; j < inner; j++) dst[d + j] = Storage[src + j * innerStride];
            d += inner;
            for (int i = rank - 2; i >= 0; i--)
            {
                if (++idx[i] < Shape[i]) break;
                idx[i] = 0;
            }
        }
    }

    /// <summary>Adds a dense row-major buffer into a (possibly strided) window of <paramref name="target"/> storage.</summary>
    internal static void AddStrided(ReadOnlySpan<float> src, float[] target, int offset, int[] shape, int[] strides)
    {
        int rank = shape.Length;
        int n = Tensors.Shape.Numel(shape);
        if (n == 0) return;
        if (rank == 0) { target[offset] += src[0]; return; }
        int inner = shape[rank - 1], innerStride = strides[rank - 1];
        var idx = new int[rank];
        int outer = n / inner;
        for (int o = 0, s = 0; o < outer; o++)
        {
            int dst = offset;
            for (int i = 0; i < rank - 1; i++) dst += idx[i] * strides[i];
            if (innerStride == 1) TensorPrimitives.Add(target.AsSpan(dst, inner), src.Slice(s, inner), target.AsSpan(dst, inner));
            else for (int j = 0; j < inner; j++) target[dst + j * innerStride] += src[s + j];
            s += inner;
            for (int i = rank - 2; i >= 0; i--)
            {
                if (++idx[i] < shape[i]) break;
                idx[i] = 0;
            }
        }
    }

    /// <summary>This tensor if contiguous, else a dense copy (which keeps the gradient connection).</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return this;
        var result = new float[Numel];
        CopyStridedTo(result);
        return FromOp(result, Shape, [this], static o =>
        {
            var x = o.Parent(0);
            x.AccumulateGrad(o.Grad!);
        });
    }

    public Tensor Detach() => IsContiguous ? new Tensor(Storage, Shape, null, Offset) : new Tensor(ToArray(), Shape);

    public override string ToString() => $"Tensor{Tensors.Shape.Format(Shape)}";

    // ---- autodiff ---------------------------------------------------------------------------

    [ThreadStatic] private static int _noGradDepth;

    /// <summary>While the returned scope lives, ops record no graph (inference, evaluation).</summary>
    public static NoGradScope NoGrad() { _noGradDepth++; return new NoGradScope(); }

    public readonly struct NoGradScope : IDisposable
    {
        public void Dispose() => _noGradDepth--;
    }

    internal static bool Recording => _noGradDepth == 0;

    /// <summary>Wraps an op's output; records parents and backward only when a parent needs a gradient.</summary>
    internal static Tensor FromOp(float[] data, int[] shape, Tensor[] parents, Action<Tensor> backward)
    {
        var t = new Tensor(data, shape);
        if (Recording)
        {
            foreach (var p in parents)
            {
                if (!p.RequiresGrad) continue;
                t.RequiresGrad = true;
                t._parents = parents;
                t._backward = backward;
                break;
            }
        }
        return t;
    }

    /// <summary>A view of this tensor's storage as an op result (reshape, transpose, slice).</summary>
    internal Tensor ViewOp(int[] shape, int[] strides, int offset, Action<Tensor> backward)
    {
        var t = new Tensor(Storage, shape, strides, offset);
        if (Recording && RequiresGrad)
        {
            t.RequiresGrad = true;
            t._parents = [this];
            t._backward = backward;
        }
        return t;
    }

    internal Tensor Parent(int i) => _parents![i];

    /// <summary>Adds <paramref name="g"/> (row-major over Shape) into this tensor's gradient.</summary>
    internal void AccumulateGrad(ReadOnlySpan<float> g)
    {
        if (!RequiresGrad) return;
        if (Grad == null) Grad = g.ToArray();
        else TensorPrimitives.Add(Grad, g, Grad);
    }

    /// <summary>
    /// Like <see cref="AccumulateGrad"/> for a buffer the caller allocated for this call alone: the first
    /// gradient is adopted instead of copied.
    /// </summary>
    internal void AccumulateOwnedGrad(float[] g)
    {
        if (!RequiresGrad) return;
        if (Grad == null && g.Length == Numel) Grad = g;
        else AccumulateGrad(g);
    }

    /// <summary>The gradient buffer, allocated as zeros on first use, for ops that scatter into it.</summary>
    internal float[] GradBuffer() => Grad ??= new float[Numel];

    public void ZeroGrad() => Grad = null;

    /// <summary>
    /// Back-propagates from this scalar (or from <paramref name="seed"/>, row-major over Shape):
    /// every tensor that requires a gradient and led here receives d(this)/d(it) in Grad.
    /// </summary>
    public void Backward(float[]? seed = null)
    {
        if (!RequiresGrad) throw new InvalidOperationException("Backward() on a tensor that does not depend on any parameter.");
        if (seed == null && Numel != 1) throw new InvalidOperationException($"Backward() without a seed needs a scalar; this is {Tensors.Shape.Format(Shape)}.");
        var order = TopologicalOrder();
        AccumulateGrad(seed ?? [1f]);
        for (int i = order.Count - 1; i >= 0; i--)
        {
            var node = order[i];
            if (node.Grad != null) node._backward!(node);
            // Intermediate results are not needed once their gradient has flowed on.
            node._parents = null;
            node._backward = null;
            node.Grad = null;
        }
    }

    private List<Tensor> TopologicalOrder()
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor Node, int Next)>();
        stack.Push((this, 0));
        visited.Add(this);
        while (stack.Count > 0)
        {
            var (node, next) = stack.Pop();
            var parents = node._parents;
            if (parents != null && next < parents.Length)
            {
                stack.Push((node, next + 1));
                var p = parents[next];
                if (p._backward != null && visited.Add(p)) stack.Push((p, 0));
            }
            else if (node._backward != null) order.Add(node);
        }
        return order;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float[] NewBuffer(int n) => GC.AllocateUninitializedArray<float>(n);
}
