using Xunit;
using Coldmind.Nn;
using Coldmind.Tensors;
using static Coldmind.Tests.GradCheck;

namespace Coldmind.Tests;

public class ModuleTests
{
    [Theory]
    [InlineData(Activation.Silu)] [InlineData(Activation.SquaredRelu)]
    public void Transformer_block_gradients_match_finite_differences(Activation ffn)
    {
        var block = new TransformerBlock(new TransformerConfig(Dim: 8, Heads: 4, KvHeads: 2, FfnDim: 12, FfnActivation: ffn), new Rng(1));
        var x = Rand(2, 2, 5, 8);
        Check(t => block.Forward(t[0]), [x, .. block.Parameters()], maxProbes: 12);
    }

    [Fact]
    public void Parameters_have_stable_dotted_names()
    {
        var mlp = new Mlp(4, [3], 2, new Rng(0));
        Assert.Equal(["net.1.weight", "net.1.bias", "net.3.weight", "net.3.bias"], mlp.NamedParameters().Select(p => p.Name));
        var block = new TransformerBlock(new TransformerConfig(8, 2, 1, 16), new Rng(0));
        var names = block.NamedParameters().Select(p => p.Name).ToArray();
        Assert.Contains("attention.wq.weight", names);
        Assert.Contains("feed_forward.w2.weight", names);
        Assert.Equal(names.Length, names.Distinct().Count());
    }

    [Fact]
    public void Load_state_copies_by_name_and_refuses_missing_or_misshapen_tensors()
    {
        var a = new Mlp(4, [3], 2, new Rng(1));
        var b = new Mlp(4, [3], 2, new Rng(2));
        b.LoadState(a.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor));
        Assert.Equal(a.Parameters().SelectMany(p => p.ToArray()), b.Parameters().SelectMany(p => p.ToArray()));
        var state = a.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor);
        state["net.1.weight"] = Tensor.Zeros(3, 5);
        Assert.Contains("has shape [3, 5] in the checkpoint", Assert.Throws<ColdmindException>(() => b.LoadState(state)).Message);
        state.Remove("net.1.weight");
        Assert.Contains("no tensor 'net.1.weight'", Assert.Throws<ColdmindException>(() => b.LoadState(state)).Message);
    }

    [Fact]
    public void Embedding_and_norm_modules_have_their_shapes_and_names()
    {
        var emb = new Embedding(11, 6, new Rng(1));
        var ids = Tensor.FromArray([1f, 10f, 3f, 3f], 2, 2);
        var x = emb.Forward(ids);
        Assert.Equal([2, 2, 6], x.Shape);
        Assert.Equal(emb.Weight.ToArray().AsSpan(3 * 6, 6).ToArray(), x.ToArray().AsSpan(3 * 6, 6).ToArray());
        var ln = new LayerNorm(6);
        var y = ln.Forward(x).ToArray();
        Assert.Equal(0, y.Take(6).Average(), 5); // centred, unit scale at initialisation
        Assert.Equal(["weight", "bias"], ln.NamedParameters().Select(p => p.Name));
        Assert.Equal([2, 2, 6], new RmsNorm(6).Forward(x).Shape);
    }

    [Fact]
    public void Dropout_is_active_only_in_training_mode()
    {
        var drop = new Dropout(0.5f, new Rng(1));
        var x = Tensor.Full(1f, 1000);
        var y = drop.Forward(x).ToArray();
        Assert.Contains(0f, y);
        Assert.InRange(y.Average(), 0.85, 1.15); // inverted dropout keeps the expectation
        drop.Eval();
        Assert.Equal(x.ToArray(), drop.Forward(x).ToArray());
    }
}
