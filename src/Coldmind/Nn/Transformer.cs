using Coldmind.Tensors;

namespace Coldmind.Nn;

/// <summary>Shape of a pre-norm decoder block (LLaMA / BitNet family).</summary>
public sealed record TransformerConfig(int Dim, int Heads, int KvHeads, int FfnDim, float RopeTheta = 10000f, float NormEps = 1e-5f,
    Activation FfnActivation = Activation.Silu, RopeMode Rope = RopeMode.Interleaved)
{
    public int HeadDim => Dim / Heads;
}

/// <summary>Causal self-attention with RoPE and grouped-query heads: x (b, t, dim) → (b, t, dim).</summary>
public sealed class CausalSelfAttention : Module
{
    private readonly TransformerConfig _c;
    public Linear Query { get; }
    public Linear Key { get; }
    public Linear Value { get; }
    public Linear Output { get; }

    public CausalSelfAttention(TransformerConfig c, Rng rng)
    {
        if (c.Dim % c.Heads != 0 || c.Heads % c.KvHeads != 0)
            throw new ColdmindException($"dim {c.Dim}, heads {c.Heads} and kv heads {c.KvHeads} do not divide evenly.");
        _c = c;
        int kvDim = c.KvHeads * c.HeadDim;
        Query = Child("wq", new Linear(c.Dim, c.Dim, rng, bias: false));
        Key = Child("wk", new Linear(c.Dim, kvDim, rng, bias: false));
        Value = Child("wv", new Linear(c.Dim, kvDim, rng, bias: false));
        Output = Child("wo", new Linear(c.Dim, c.Dim, rng, bias: false));
    }

    public override Tensor Forward(Tensor x)
    {
        int b = x.Shape[0], t = x.Shape[1], hd = _c.HeadDim;
        var q = Query.Forward(x).Reshape(b, t, _c.Heads, hd).Rope(0, _c.RopeTheta, _c.Rope);
        var k = Key.Forward(x).Reshape(b, t, _c.KvHeads, hd).Rope(0, _c.RopeTheta, _c.Rope);
        var v = Value.Forward(x).Reshape(b, t, _c.KvHeads, hd);
        var y = Tensor.CausalSelfAttention(q, k, v).Reshape(b, t, _c.Dim);
        return Output.Forward(y);
    }
}

/// <summary>Gated feed-forward: down(act(gate(x)) ⊙ up(x)) — SwiGLU with SiLU, BitNet 2B4T with relu².</summary>
public sealed class GatedFeedForward : Module
{
    private readonly Activation _activation;
    public Linear Gate { get; }
    public Linear Up { get; }
    public Linear Down { get; }

    public GatedFeedForward(int dim, int hidden, Activation activation, Rng rng)
    {
        _activation = activation;
        Gate = Child("w1", new Linear(dim, hidden, rng, bias: false));
        Down = Child("w2", new Linear(hidden, dim, rng, bias: false));
        Up = Child("w3", new Linear(dim, hidden, rng, bias: false));
    }

    public override Tensor Forward(Tensor x) =>
        Down.Forward(ActivationLayer.Apply(Gate.Forward(x), _activation) * Up.Forward(x));
}

/// <summary>Pre-norm block: x + attn(norm(x)), then h + ffn(norm(h)).</summary>
public sealed class TransformerBlock : Module
{
    public RmsNorm AttentionNorm { get; }
    public CausalSelfAttention Attention { get; }
    public RmsNorm FfnNorm { get; }
    public GatedFeedForward FeedForward { get; }

    public TransformerBlock(TransformerConfig c, Rng rng)
    {
        AttentionNorm = Child("attention_norm", new RmsNorm(c.Dim, c.NormEps));
        Attention = Child("attention", new CausalSelfAttention(c, rng));
        FfnNorm = Child("ffn_norm", new RmsNorm(c.Dim, c.NormEps));
        FeedForward = Child("feed_forward", new GatedFeedForward(c.Dim, c.FfnDim, c.FfnActivation, rng));
    }

    public override Tensor Forward(Tensor x)
    {
        var h = x + Attention.Forward(AttentionNorm.Forward(x));
        return h + FeedForward.Forward(FfnNorm.Forward(h));
    }
}
