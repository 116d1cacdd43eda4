using Coldmind.Numerics;

namespace Coldmind.Tensors;

/// <summary>How RoPE pairs the dimensions of a head.</summary>
public enum RopeMode
{
    /// <summary>Adjacent pairs (2i, 2i+1): ggml's normal mode, used by GGUF `llama` files.</summary>
    Interleaved,
    /// <summary>Halves (i, i + d/2): GPT-NeoX and Hugging Face LLaMA checkpoints.</summary>
    NeoX,
}

/// <summary>Rotary position embedding and causal self-attention with grouped-query heads.</summary>
public sealed partial class Tensor
{
    /// <summary>
    /// RoPE on x (b, t, heads, d): the pair (x₀, x₁) at position p is rotated by p·θ^(−2i/d).
    /// Positions start at <paramref name="startPosition"/> (the KV-cache length during generation).
    /// </summary>
    public Tensor Rope(int startPosition = 0, float theta = 10000f, RopeMode mode = RopeMode.Interleaved)
    {
        if (Rank != 4 || Shape[3] % 2 != 0) throw new ColdmindException($"RoPE needs (batch, time, heads, even head size), got {Tensors.Shape.Format(Shape)}.");
        var x = Contiguous();
        int b = Shape[0], t = Shape[1], heads = Shape[2], d = Shape[3], half = d / 2;
        var cos = new float[t * half];
        var sin = new float[t * half];
        for (int p = 0; p < t; p++)
            for (int i = 0; i < half; i++)
            {
                double angle = (startPosition + p) * Math.Pow(theta, -2.0 * i / d);
                cos[p * half + i] = (float)Math.Cos(angle);
                sin[p * half + i] = (float)Math.Sin(angle);
            }
        int stride0 = mode == RopeMode.Interleaved ? 2 : 1, pairGap = mode == RopeMode.Interleaved ? 1 : half;
        void Rotate(ReadOnlySpan<float> src, Span<float> dst, float sign)
        {
            for (int row = 0; row < b * t * heads; row++)
            {
                int p = row / heads % t, o = row * d;
                for (int i = 0; i < half; i++)
                {
                    int i0 = o + i * stride0, i1 = i0 + pairGap;
                    float c = cos[p * half + i], s = sign * sin[p * half + i];
                    float x0 = src[i0], x1 = src[i1];
                    dst[i0] = x0 * c - x1 * s;
                    dst[i1] = x0 * s + x1 * c;
                }
            }
        }
        var y = NewBuffer(Numel);
        Rotate(x.Span, y, 1f);
        return FromOp(y, Shape, [x], o =>
        {
            var gx = NewBuffer(x.Numel);
            Rotate(o.Grad, gx, -1f); // the inverse rotation is the transpose
            x.AccumulateOwnedGrad(gx);
        });
    }

    /// <summary>
    /// Causal scaled-dot-product attention: q (b, t, hq, d), k and v (b, t, hkv, d) with hq a multiple
    /// of hkv (grouped-query: query head h reads kv head h / (hq/hkv)) → (b, t, hq, d).
    /// Position i attends to positions j ≤ i.
    /// </summary>
    public static Tensor CausalSelfAttention(Tensor q, Tensor k, Tensor v)
    {
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4 || !Tensors.Shape.SameShape(k.Shape, v.Shape)
            || q.Shape[0] != k.Shape[0] || q.Shape[1] != k.Shape[1] || q.Shape[3] != k.Shape[3]
            || k.Shape[2] == 0 || q.Shape[2] % k.Shape[2] != 0)
            throw new ColdmindException($"Attention shapes q {Tensors.Shape.Format(q.Shape)}, k {Tensors.Shape.Format(k.Shape)}, v {Tensors.Shape.Format(v.Shape)} do not fit (b, t, heads, d) with grouped kv heads.");
        var qc = q.Contiguous(); var kc = k.Contiguous(); var vc = v.Contiguous();
        int b = q.Shape[0], t = q.Shape[1], hq = q.Shape[2], hkv = k.Shape[2], d = q.Shape[3], group = hq / hkv;
        float scale = 1f / MathF.Sqrt(d);
        var probs = new float[b * hq * t * t]; // (b, hq, t, t), row i holds softmax over j ≤ i
        var y = new float[b * t * hq * d];
        float[] qa = qc.Storage, ka = kc.Storage, va = vc.Storage;
        int qo = qc.Offset, ko = kc.Offset, vo = vc.Offset;
        WorkerPool.Shared.Run(b * hq, bh =>
        {
            int bi = bh / hq, h = bh % hq, hk = h / group;
            for (int i = 0; i < t; i++)
            {
                var p = probs.AsSpan((bh * t + i) * t, i + 1);
                var qi = qa.AsSpan(qo + ((bi * t + i) * hq + h) * d, d);
                for (int j = 0; j <= i; j++) p[j] = scale * TensorPrimitives.Dot(qi, ka.AsSpan(ko + ((bi * t + j) * hkv + hk) * d, d));
                SoftmaxRow(p, p);
                var yi = y.AsSpan(((bi * t + i) * hq + h) * d, d);
                for (int j = 0; j <= i; j++) TensorPrimitives.MultiplyAdd(va.AsSpan(vo + ((bi * t + j) * hkv + hk) * d, d), p[j], yi, yi);
            }
        });
        return FromOp(y, [b, t, hq, d], [qc, kc, vc], o =>
        {
            var g = o.Grad!;
            var gq = new float[qc.Numel];
            var gk = new float[kc.Numel];
            var gv = new float[vc.Numel];
            // One job per kv head, looping over its query heads: no two jobs write the same dK/dV rows.
            WorkerPool.Shared.Run(b * hkv, bk =>
            {
                int bi = bk / hkv, hk = bk % hkv;
                var dp = new float[t];
                for (int h = hk * group; h < (hk + 1) * group; h++)
                {
                    int bh = bi * hq + h;
                    for (int i = 0; i < t; i++)
                    {
                        var p = probs.AsSpan((bh * t + i) * t, i + 1);
                        var gi = g.AsSpan(((bi * t + i) * hq + h) * d, d);
                        // dP_ij = dY_i · V_j; dV_j += P_ij dY_i
                        for (int j = 0; j <= i; j++)
                        {
                            int kvRow = ((bi * t + j) * hkv + hk) * d;
                            dp[j] = TensorPrimitives.Dot(gi, va.AsSpan(vo + kvRow, d));
                            TensorPrimitives.MultiplyAdd(gi, p[j], gv.AsSpan(kvRow, d), gv.AsSpan(kvRow, d));
                        }
                        // dS = P ⊙ (dP − Σ_j P_ij dP_ij), then dQ_i += scale·dS_ij K_j, dK_j += scale·dS_ij Q_i
                        float dot = TensorPrimitives.Dot(p, dp.AsSpan(0, i + 1));
                        var qRow = ((bi * t + i) * hq + h) * d;
                        var gqi = gq.AsSpan(qRow, d);
                        for (int j = 0; j <= i; j++)
                        {
                            float ds = scale * p[j] * (dp[j] - dot);
                            int kvRow = ((bi * t + j) * hkv + hk) * d;
                            TensorPrimitives.MultiplyAdd(ka.AsSpan(ko + kvRow, d), ds, gqi, gqi);
                            TensorPrimitives.MultiplyAdd(qa.AsSpan(qo + qRow, d), ds, gk.AsSpan(kvRow, d), gk.AsSpan(kvRow, d));
                        }
                    }
                }
            });
            qc.AccumulateOwnedGrad(gq);
            kc.AccumulateOwnedGrad(gk);
            vc.AccumulateOwnedGrad(gv);
        });
    }
}
