using Coldmind.Nn;
using Coldmind.Tensors;

namespace Coldmind.LmTraining;

/// <summary>
/// Shape of a small decoder-only language model in BitNet b1.58 2B4T's layout. <see cref="Ternary"/> makes
/// every projection a <see cref="BitLinear"/> (ternary weights, int8 activations); otherwise the same model
/// in float. Rows must be whole 256-value blocks (Dim and FfnDim multiples of 256) so the ternary weights
/// export as TQ2_0.
/// </summary>
public sealed record TinyLmConfig(int Vocab, int Dim = 256, int Layers = 4, int Heads = 4, int KvHeads = 4, int FfnDim = 768,
    bool Ternary = true, Activation FfnActivation = Activation.SquaredRelu, float RopeTheta = 10000f, float NormEps = 1e-5f)
{
    public int HeadDim => Dim / Heads;

    public void Validate()
    {
        if (Dim % 256 != 0 || FfnDim % 256 != 0) throw new ColdmindException($"--dim and --ffn must be multiples of 256 (whole TQ2_0 blocks), got {Dim} and {FfnDim}.");
        if (Dim % Heads != 0 || Heads % KvHeads != 0 || HeadDim % 2 != 0) throw new ColdmindException($"{Heads} heads and {KvHeads} KV heads do not divide a dimension of {Dim}.");
        if (Layers < 1 || Vocab < 2) throw new ColdmindException($"A model needs at least one layer and two tokens, got {Layers} and {Vocab}.");
        if (FfnActivation is not (Activation.SquaredRelu or Activation.Silu)) throw new ColdmindException("The feed-forward activation is relu² (BitNet 2B4T) or SiLU (LLaMA).");
    }
}

/// <summary>
/// One block, named as GGUF's bitnet architecture: attn_norm → q, k, v (NeoX RoPE, as llama.cpp applies to
/// bitnet files; grouped-query causal attention)
/// → attn_sub_norm → o, residual; ffn_norm → gate, up → act(gate) · up → ffn_sub_norm → down, residual.
/// </summary>
public sealed class TinyLmBlock : Module
{
    private readonly TinyLmConfig _c;
    private readonly RmsNorm _attnNorm, _attnSubNorm, _ffnNorm, _ffnSubNorm;
    public Module Query { get; }
    public Module Key { get; }
    public Module Value { get; }
    public Module Output { get; }
    public Module Gate { get; }
    public Module Up { get; }
    public Module Down { get; }

    public TinyLmBlock(TinyLmConfig c, Rng rng)
    {
        _c = c;
        Module Project(string name, int input, int output) =>
            Child<Module>(name, c.Ternary ? new BitLinear(input, output, rng, norm: false) : new Linear(input, output, rng, bias: false));
        _attnNorm = Child("attn_norm", new RmsNorm(c.Dim, c.NormEps));
        Query = Project("attn_q", c.Dim, c.Dim);
        Key = Project("attn_k", c.Dim, c.KvHeads * c.HeadDim);
        Value = Project("attn_v", c.Dim, c.KvHeads * c.HeadDim);
        _attnSubNorm = Child("attn_sub_norm", new RmsNorm(c.Dim, c.NormEps));
        Output = Project("attn_output", c.Dim, c.Dim);
        _ffnNorm = Child("ffn_norm", new RmsNorm(c.Dim, c.NormEps));
        Gate = Project("ffn_gate", c.Dim, c.FfnDim);
        Up = Project("ffn_up", c.Dim, c.FfnDim);
        _ffnSubNorm = Child("ffn_sub_norm", new RmsNorm(c.FfnDim, c.NormEps));
        Down = Project("ffn_down", c.FfnDim, c.Dim);
    }

    public override Tensor Forward(Tensor x)
    {
        int b = x.Shape[0], t = x.Shape[1], hd = _c.HeadDim;
        var h = _attnNorm.Forward(x);
        var q = Query.Forward(h).Reshape(b, t, _c.Heads, hd).Rope(0, _c.RopeTheta, RopeMode.NeoX);
        var k = Key.Forward(h).Reshape(b, t, _c.KvHeads, hd).Rope(0, _c.RopeTheta, RopeMode.NeoX);
        var v = Value.Forward(h).Reshape(b, t, _c.KvHeads, hd);
        var attention = Tensor.CausalSelfAttention(q, k, v).Reshape(b, t, _c.Dim);
        x = x + Output.Forward(_attnSubNorm.Forward(attention));
        h = _ffnNorm.Forward(x);
        var inner = ActivationLayer.Apply(Gate.Forward(h), _c.FfnActivation) * Up.Forward(h);
        return x + Down.Forward(_ffnSubNorm.Forward(inner));
    }
}

/// <summary>Token embedding → blocks → output norm → logits through the tied embedding (as BitNet 2B4T).</summary>
public sealed class TinyLm : Module
{
    public TinyLmConfig Config { get; }
    public Embedding Embedding { get; }
    public IReadOnlyList<TinyLmBlock> Blocks { get; }
    public RmsNorm OutputNorm { get; }

    public TinyLm(TinyLmConfig c, Rng rng)
    {
        c.Validate();
        Config = c;
        Embedding = Child("token_embd", new Embedding(c.Vocab, c.Dim, rng, std: 0.02f));
        Blocks = Enumerable.Range(0, c.Layers).Select(i => Child($"blk.{i}", new TinyLmBlock(c, rng))).ToArray();
        OutputNorm = Child("output_norm", new RmsNorm(c.Dim, c.NormEps));
    }

    /// <summary>Logits (batch · time, vocab) for token ids (batch, time).</summary>
    public Tensor Logits(int[] ids, int batch, int time)
    {
        var x = Embedding.Forward(ids, batch, time);
        foreach (var block in Blocks) x = block.Forward(x);
        return Tensor.Linear(OutputNorm.Forward(x).Reshape(batch * time, Config.Dim), Embedding.Weight, null);
    }

    public override Tensor Forward(Tensor ids) =>
        Logits(ids.ToArray().Select(v => (int)v).ToArray(), ids.Shape[0], ids.Shape[1]);
}
