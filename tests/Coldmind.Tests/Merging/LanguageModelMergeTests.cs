using Xunit;
using Coldmind.LmTraining;
using Coldmind.Merging;
using Coldmind.Runtime.Lm;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class LanguageModelMergeTests
{
    [Fact]
    public void Stacked_blocks_of_two_gguf_models_run_in_the_runtime_as_the_same_stack_in_the_trainer()
    {
        string text = string.Concat(Enumerable.Repeat("the quick brown fox jumps over the lazy dog. ", 40));
        var vocabulary = new CharacterVocabulary(text);
        var config = new TinyLmConfig(vocabulary.Size, Dim: 256, Layers: 1, Heads: 4, KvHeads: 4, FfnDim: 256, Ternary: false);
        var a = new TinyLm(config, new Rng(1));
        var b = new TinyLm(config, new Rng(2));
        using var dir = new TempDir();
        string pa = dir.File("a.gguf"), pb = dir.File("b.gguf"), child = dir.File("child.gguf");
        TinyLmExport.Write(a, vocabulary, pa, "a");
        TinyLmExport.Write(b, vocabulary, pb, "b");
        var recipe = MergeRecipe.Parse($$"""
            {"merge_method": "passthrough", "base_model": "{{pa}}",
             "slices": [{"model": "{{pa}}", "layer_range": [0, 1]}, {"model": "{{pb}}", "layer_range": [0, 1], "scale": 0.5}]}
            """, dir.Path);
        new Merger().Merge(recipe).Save(child, recipe.ToJsonString());

        // the trainer's model with the same stack: a's embedding, norm and block, then b's block adding half its output
        var stacked = new TinyLm(config with { Layers = 2 }, new Rng(0));
        var state = a.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor);
        foreach (var (name, t) in b.NamedParameters().Where(p => p.Name.StartsWith("blk.0.", StringComparison.Ordinal)))
            state["blk.1." + name[6..]] = name.EndsWith("sub_norm.weight", StringComparison.Ordinal) ? t.Scale(0.5f) : t;
        stacked.LoadState(state);

        using var lm = LanguageModel.Load(child);
        Assert.Equal(2, lm.Config.Layers);
        var prompt = vocabulary.Encode("the lazy fox");
        var runtime = lm.CreateSession(32).Evaluate(prompt);
        float[] expected;
        using (Tensor.NoGrad()) expected = stacked.Logits(prompt, 1, prompt.Length).ToArray()[^config.Vocab..];
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], runtime[i], 3);

        // a model with another vocabulary cannot be merged with these
        var other = new CharacterVocabulary("zyxwvutsrqponmlkjihgfedcba .!?");
        var c = new TinyLm(config with { Vocab = other.Size }, new Rng(3));
        string pc = dir.File("c.gguf");
        TinyLmExport.Write(c, other, pc, "c");
        var e = Assert.Throws<ColdmindException>(() => new Merger().Merge(MergeRecipe.Parse($$"""{"merge_method": "linear", "models": [{"model": "{{pa}}"}, {"model": "{{pc}}"}]}""", dir.Path)));
        Assert.Contains("vocabulary", e.Message);
    }
}
