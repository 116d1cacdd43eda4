using Coldmind.Kernels;

namespace Coldmind.Tensors;

/// <summary>2-D convolution (im2col + one GEMM for the whole batch) and max-pooling, NCHW layout.</summary>
public sealed partial class Tensor
{
    /// <summary>
    /// x (n, c, h, w) ⊛ weight (o, c, kh, kw) + bias (o) → (n, o, oh, ow), with stride and zero padding.
    /// The whole batch is unfolded into cols (c·kh·kw, n·oh·ow) so the product is one large GEMM.
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
        var geom = new ConvGeometry(n, c, h, w, kh, kw, oh, ow, stride, padding);
        var xc = x.Contiguous();
        var wc = weight.Contiguous();
        int ckk = c * kh * kw, l = oh * ow, cols = n * l;
        var col = NewBuffer(ckk * cols);
        WorkerPool.Shared.Run(n, i => geom.Im2Col(xc.Span.Slice(i * c * h * w, c * h * w), col, i));
        var yAll = NewBuffer(o * cols); // (o, n·l)
        unsafe
        {
            fixed (float* pw = wc.Storage, pc = col, py = yAll)
                Gemm.Multiply(o, cols, ckk, pw + wc.Offset, ckk, 1, pc, cols, 1, py, cols, accumulate: false);
        }
        var y = NewBuffer(n * o * l);
        var bs = bias?.Contiguous().ToArray();
        for (int i = 0; i < n; i++)
            for (int f = 0; f < o; f++)
            {
                var dst = y.AsSpan((i * o + f) * l, l);
                if (bs == null) yAll.AsSpan(f * cols + i * l, l).CopyTo(dst);
                else TensorPrimitives.Add(yAll.AsSpan(f * cols + i * l, l), bs[f], dst);
            }
        Tensor[] parents = bias == null ? [xc, wc] : [xc, wc, bias];
        return FromOp(y, [n, o, oh, ow], parents, r =>
        {
            var g = r.Grad!;
            var gAll = NewBuffer(o * cols); // dY as (o, n·l)
            for (int i = 0; i < n; i++)
                for (int f = 0; f < o; f++)
                    g.AsSpan((i * o + f) * l, l).CopyTo(gAll.AsSpan(f * cols + i * l, l));
            if (bias != null && bias.RequiresGrad)
            {
                var db = new float[o];
                for (int f = 0; f < o; f++) db[f] = TensorPrimitives.Sum(gAll.AsSpan(f * cols, cols));
                bias.AccumulateGrad(db);
            }
            unsafe
            {
                fixed (float* pg = gAll, pc = col, pw = wc.Storage)
                {
                    if (wc.RequiresGrad)
                        fixed (float* pd = wc.GradBuffer()) // dW (o, ckk) += dY (o, n·l) @ cols^T (n·l, ckk)
                            Gemm.Multiply(o, ckk, cols, pg, cols, 1, pc, 1, cols, pd, ckk, accumulate: true);
                    if (xc.RequiresGrad)
                    {
                        // dcols (ckk, n·l) = W^T (ckk, o) @ dY (o, n·l), then folded back onto the image.
                        fixed (float* pd = col)
                            Gemm.Multiply(ckk, cols, o, pw + wc.Offset, 1, ckk, pg, cols, 1, pd, cols, accumulate: false);
                        var gx = xc.GradBuffer();
                        WorkerPool.Shared.Run(n, i => geom.Col2ImAdd(col, i, gx.AsSpan(i * c * h * w, c * h * w)));
                    }
                }
            }
        });
    }

    private readonly record struct ConvGeometry(int N, int C, int H, int W, int KH, int KW, int OH, int OW, int Stride, int Padding)
    {
        /// <summary>Unfolds image i into its columns of cols (c·kh·kw, n·oh·ow).</summary>
        public void Im2Col(ReadOnlySpan<float> image, float[] cols, int i)
        {
            int l = OH * OW, ld = N * l;
            for (int ch = 0; ch < C; ch++)
                for (int ky = 0; ky < KH; ky++)
                    for (int kx = 0; kx < KW; kx++)
                    {
                        var row = cols.AsSpan(((ch * KH + ky) * KW + kx) * ld + i * l, l);
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

        /// <summary>Adds image i's columns of cols back onto its pixels (the adjoint of Im2Col).</summary>
        public void Col2ImAdd(float[] cols, int i, Span<float> image)
        {
            int l = OH * OW, ld = N * l;
            for (int ch = 0; ch < C; ch++)
                for (int ky = 0; ky < KH; ky++)
                    for (int kx = 0; kx < KW; kx++)
                    {
                        var row = cols.AsSpan(((ch * KH + ky) * KW + kx) * ld + i * l, l);
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

    /// <summary>Max over k×k windows with the given stride (default k): (n, c, h, w) → (n, c, oh, ow).</summary>
    public Tensor MaxPool2d(int kernel, int stride = 0)
    {
        if (stride == 0) stride = kernel;
        if (Rank != 4 || kernel < 1 || stride < 1 || kernel > Shape[2] || kernel > Shape[3])
            throw new ColdmindException($"MaxPool2d({kernel}, stride {stride}) does not fit input {Tensors.Shape.Format(Shape)} (n, c, h, w).");
        var x = Contiguous();
        int planes = Shape[0] * Shape[1], h = Shape[2], w = Shape[3];
        int oh = (h - kernel) / stride + 1, ow = (w - kernel) / stride + 1;
        var y = NewBuffer(planes * oh * ow);
        var arg = new int[y.Length];
        var xs = x.Storage;
        int xo = x.Offset;
        for (int p = 0; p < planes; p++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                {
                    int best = (p * h + oy * stride) * w + ox * stride;
                    for (int ky = 0; ky < kernel; ky++)
                        for (int kx = 0; kx < kernel; kx++)
                        {
                            int idx = (p * h + oy * stride + ky) * w + ox * stride + kx;
                            if (xs[xo + idx] > xs[xo + best]) best = idx;
                        }
                    int at = (p * oh + oy) * ow + ox;
                    y[at] = xs[xo + best];
                    arg[at] = best;
                }
        return FromOp(y, [Shape[0], Shape[1], oh, ow], [x], o =>
        {
            var gx = x.GradBuffer();
            var g = o.Grad!;
            for (int i = 0; i < g.Length; i++) gx[arg[i]] += g[i];
        });
    }
}
