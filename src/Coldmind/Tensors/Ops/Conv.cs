using Coldmind.Kernels;
using Coldmind.Numerics;

namespace Coldmind.Tensors;

/// <summary>2-D convolution (per-image im2col + GEMM) and max-pooling, NCHW layout.</summary>
public sealed partial class Tensor
{
    /// <summary>Images per chunk of the weight-gradient sum: fixed, so the summation order (and the result) is the same for any thread count.</summary>
    private const int ConvGradientChunks = 8;

    /// <summary>
    /// x (n, c, h, w) ⊛ weight (o, c, kh, kw) + bias (o) → (n, o, oh, ow), with stride and zero padding.
    /// Each image is unfolded into a cache-resident cols (c·kh·kw, oh·ow) and multiplied by weight
    /// (o, c·kh·kw) straight into its output plane; images run in parallel. The backward pass unfolds
    /// again rather than keeping a batch-sized cols buffer alive between the passes.
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias, int stride = 1, int padding = 0)
    {
        if (x.Rank != 4 || weight.Rank != 4 || x.Shape[1] != weight.Shape[1])
            throw new ColdmindException($"Conv2d: input {Tensors.Shape.Format(x.Shape)} (n, c, h, w) does not fit weight {Tensors.Shape.Format(weight.Shape)} (o, c, kh, kw).");
        if (stride < 1 || padding < 0) throw new ColdmindException($"Conv2d: stride {stride} and padding {padding} are invalid.");
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        int o = weight.Shape[0], kh = weight.Shape[2], kw = weight.Shape[3];
        int oh = (h + 2 * padding - kh) / stride + 1, ow = (w + 2 * padding - kw) / stride + 1;
        if (oh <= 0 || ow <= 0) throw new ColdmindException($"Conv2d: a {kh}×{kw} kernel does not fit a {h}×{w} input with padding {padding}.");
        var geom = new ConvGeometry(c, h, w, kh, kw, oh, ow, stride, padding);
        var xc = x.Contiguous();
        var wc = weight.Contiguous();
        int ckk = c * kh * kw, l = oh * ow, image = c * h * w;
        var y = NewBuffer(n * o * l);
        var bs = bias?.Contiguous().ToArray();
        WorkerPool.Shared.Run(n, i =>
        {
            var col = ConvScratch(ckk * l);
            geom.Im2Col(xc.Span.Slice(i * image, image), col);
            unsafe
            {
                // y_i (o, l) = W (o, ckk) @ cols (ckk, l)
                fixed (float* pw = wc.Storage, pc = col, py = y)
                    Gemm.Multiply(o, l, ckk, pw + wc.Offset, ckk, 1, pc, l, 1, py + (long)i * o * l, l, accumulate: false);
            }
            if (bs != null)
                for (int f = 0; f < o; f++) TensorPrimitives.Add(y.AsSpan((i * o + f) * l, l), bs[f], y.AsSpan((i * o + f) * l, l));
        });
        Tensor[] parents = bias == null ? [xc, wc] : [xc, wc, bias];
        return FromOp(y, [n, o, oh, ow], parents, r =>
        {
            var g = r.Grad!;
            int chunks = Math.Min(n, ConvGradientChunks);
            var dw = new float[chunks][];
            var db = new float[chunks][];
            var gx = xc.RequiresGrad ? xc.GradBuffer() : null;
            WorkerPool.Shared.Run(chunks, part =>
            {
                var dwPart = dw[part] = new float[o * ckk];
                var dbPart = db[part] = new float[o];
                var col = ConvScratch(ckk * l);
                for (int i = part * n / chunks; i < (part + 1) * n / chunks; i++)
                {
                    geom.Im2Col(xc.Span.Slice(i * image, image), col);
                    unsafe
                    {
                        fixed (float* pg = g, pc = col, pw = wc.Storage, pd = dwPart)
                        {
                            float* gi = pg + (long)i * o * l;
                            // dW (o, ckk) += dY_i (o, l) @ cols^T (l, ckk)
                            Gemm.Multiply(o, ckk, l, gi, l, 1, pc, 1, l, pd, ckk, accumulate: true);
                            // dcols (ckk, l) = W^T (ckk, o) @ dY_i (o, l), folded back onto image i
                            if (gx != null) Gemm.Multiply(ckk, l, o, pw + wc.Offset, 1, ckk, gi, l, 1, pc, l, accumulate: false);
                        }
                    }
                    if (gx != null) geom.Col2ImAdd(col, gx.AsSpan(i * image, image));
                    for (int f = 0; f < o; f++) dbPart[f] += TensorPrimitives.Sum(g.AsSpan((i * o + f) * l, l));
                }
            });
            for (int p = 1; p < chunks; p++)
            {
                TensorPrimitives.Add(dw[0], dw[p], dw[0]);
                TensorPrimitives.Add(db[0], db[p], db[0]);
            }
            wc.AccumulateOwnedGrad(dw[0]);
            bias?.AccumulateOwnedGrad(db[0]);
        });
    }

    [ThreadStatic] private static float[]? _convScratch;

    /// <summary>Per-thread cols buffer, reused across images and calls.</summary>
    private static float[] ConvScratch(int size)
    {
        if (_convScratch == null || _convScratch.Length < size) _convScratch = new float[size];
        return _convScratch;
    }

    private readonly record struct ConvGeometry(int C, int H, int W, int KH, int KW, int OH, int OW, int Stride, int Padding)
    {
        /// <summary>Unfolds one image (c, h, w) into cols (c·kh·kw, oh·ow).</summary>
        public void Im2Col(ReadOnlySpan<float> image, float[] cols)
        {
            int l = OH * OW;
            for (int ch = 0; ch < C; ch++)
                for (int ky = 0; ky < KH; ky++)
                    for (int kx = 0; kx < KW; kx++)
                    {
                        var row = cols.AsSpan(((ch * KH + ky) * KW + kx) * l, l);
                        var (lo, hi) = ValidColumns(kx);
                        for (int oy = 0; oy < OH; oy++)
                        {
                            var dst = row.Slice(oy * OW, OW);
                            int iy = oy * Stride - Padding + ky;
                            if ((uint)iy >= (uint)H || lo >= hi) { dst.Clear(); continue; }
                            dst[..lo].Clear();
                            dst[hi..].Clear();
                            var src = image.Slice((ch * H + iy) * W);
                            int ix0 = lo * Stride - Padding + kx;
                            if (Stride == 1) src.Slice(ix0, hi - lo).CopyTo(dst[lo..hi]);
                            else for (int ox = lo; ox < hi; ox++) dst[ox] = src[ix0 + (ox - lo) * Stride];
                        }
                    }
        }

        /// <summary>The output columns [lo, hi) whose input column ox·stride − padding + kx lies inside the image.</summary>
        private (int Lo, int Hi) ValidColumns(int kx)
        {
            int last = W - 1 + Padding - kx; // ox·stride ≤ last
            if (last < 0) return (0, 0);
            int lo = Math.Max(0, (Padding - kx + Stride - 1) / Stride);
            int hi = Math.Min(OW, last / Stride + 1);
            return (lo, Math.Max(lo, hi));
        }

        /// <summary>Adds cols (c·kh·kw, oh·ow) back onto the pixels of one image (the adjoint of Im2Col).</summary>
        public void Col2ImAdd(float[] cols, Span<float> image)
        {
            int l = OH * OW;
            for (int ch = 0; ch < C; ch++)
                for (int ky = 0; ky < KH; ky++)
                    for (int kx = 0; kx < KW; kx++)
                    {
                        var row = cols.AsSpan(((ch * KH + ky) * KW + kx) * l, l);
                        var (lo, hi) = ValidColumns(kx);
                        if (lo >= hi) continue;
                        for (int oy = 0; oy < OH; oy++)
                        {
                            int iy = oy * Stride - Padding + ky;
                            if ((uint)iy >= (uint)H) continue;
                            var src = row.Slice(oy * OW + lo, hi - lo);
                            var dst = image.Slice((ch * H + iy) * W + lo * Stride - Padding + kx);
                            if (Stride == 1) TensorPrimitives.Add(dst[..src.Length], src, dst[..src.Length]);
                            else for (int j = 0; j < src.Length; j++) dst[j * Stride] += src[j];
                        }
                    }
        }
    }

    /// <summary>Max over k×k windows with the given stride (default k): (n, c, h, w) → (n, c, oh, ow). Planes run in parallel.</summary>
    public Tensor MaxPool2d(int kernel, int stride = 0)
    {
        if (stride == 0) stride = kernel;
        if (Rank != 4 || kernel < 1 || stride < 1 || kernel > Shape[2] || kernel > Shape[3])
            throw new ColdmindException($"MaxPool2d({kernel}, stride {stride}) does not fit input {Tensors.Shape.Format(Shape)} (n, c, h, w).");
        var x = Contiguous();
        int planes = Shape[0] * Shape[1], h = Shape[2], w = Shape[3];
        int oh = (h - kernel) / stride + 1, ow = (w - kernel) / stride + 1;
        var y = NewBuffer(planes * oh * ow);
        var arg = new int[y.Length]; // flat input index of each maximum, for the backward scatter
        var xs = x.Storage;
        int xo = x.Offset;
        WorkerPool.Shared.Run(planes, p =>
        {
            if (kernel == 2 && stride == 2) Pool2x2(xs, xo + p * h * w, w, oh, ow, y, arg, p * oh * ow, p * h * w);
            else PoolPlane(xs.AsSpan(xo + p * h * w, h * w), w, oh, ow, kernel, stride, y.AsSpan(p * oh * ow, oh * ow), arg.AsSpan(p * oh * ow, oh * ow), p * h * w);
        });
        return FromOp(y, [Shape[0], Shape[1], oh, ow], [x], o =>
        {
            var gx = x.GradBuffer();
            var g = o.Grad!;
            for (int i = 0; i < g.Length; i++) gx[arg[i]] += g[i];
        });
    }

    /// <summary>One plane, any window: y and arg (its flat input index, offset by <paramref name="argBase"/>) per output.</summary>
    private static void PoolPlane(ReadOnlySpan<float> plane, int w, int oh, int ow, int kernel, int stride, Span<float> y, Span<int> arg, int argBase)
    {
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
            {
                int best = oy * stride * w + ox * stride;
                float m = plane[best];
                for (int ky = 0; ky < kernel; ky++)
                {
                    int row = (oy * stride + ky) * w + ox * stride;
                    for (int kx = 0; kx < kernel; kx++)
                    {
                        // Branch-free: which element wins is data-dependent and unpredictable.
                        float v = plane[row + kx];
                        bool greater = v > m;
                        best = greater ? row + kx : best;
                        m = greater ? v : m;
                    }
                }
                y[oy * ow + ox] = m;
                arg[oy * ow + ox] = argBase + best;
            }
    }

    /// <summary>The 2×2, stride-2 window of every small CNN, unrolled: same results as <see cref="PoolPlane"/>, first maximum wins.</summary>
    private static unsafe void Pool2x2(float[] xs, int planeOffset, int w, int oh, int ow, float[] y, int[] arg, int outOffset, int argBase)
    {
        fixed (float* px = &xs[planeOffset], py = &y[outOffset])
        fixed (int* pa = &arg[outOffset])
        {
            for (int oy = 0; oy < oh; oy++)
            {
                int r0 = 2 * oy * w;
                float* o = py + oy * ow;
                int* a = pa + oy * ow;
                for (int ox = 0; ox < ow; ox++)
                {
                    int i = r0 + 2 * ox;
                    float m = px[i];
                    int best = i;
                    float v = px[i + 1]; bool g = v > m; best = g ? i + 1 : best; m = g ? v : m;
                    v = px[i + w]; g = v > m; best = g ? i + w : best; m = g ? v : m;
                    v = px[i + w + 1]; g = v > m; best = g ? i + w + 1 : best; m = g ? v : m;
                    o[ox] = m;
                    a[ox] = argBase + best;
                }
            }
        }
    }
}
