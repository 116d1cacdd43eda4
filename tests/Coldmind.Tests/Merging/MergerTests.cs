using Xunit;
using Coldmind.Models;
using Coldmind.Cost;
using Coldmind.Data;
using Coldmind.Merging;
using Coldmind.Nn;
using Coldmind.Runtime.Classifier;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class MergerTests(DigitsParents parents) : IClassFixture<DigitsParents>
{
    private static MergeRecipe Recipe(string json, string dir) => MergeRecipe.Parse(json, dir);

    private static float[] Logits(MergeModel m, Dataset data) => Trainer.Logits(m.ToClassifier(), data);

    [Fact]
    public void A_weight_of_one_on_one_model_reproduces_it_and_recipes_merge_tensor_by_tensor()
    {
        var merger = new Merger();
        var a = MergeModel.Load(parents.A);
        var b = MergeModel.Load(parents.B);
        var only = merger.Merge(Recipe($$$"""{"merge_method": "linear", "models": [{"model": "{{{parents.A}}}", "parameters": {"weight": 1}}, {"model": "{{{parents.B}}}", "parameters": {"weight": 0}}]}""", "/"));
        for (int i = 0; i < a.Tensors.Count; i++) Assert.Equal(a.Tensors[i].Values, only.Tensors[i].Values);

        // a per-layer filter: layer net.1 from b only, everything else averaged
        var mixed = merger.Merge(Recipe($$$"""
            {"merge_method": "linear", "models": [
              {"model": "{{{parents.A}}}", "parameters": {"weight": [{"filter": "net.1.", "value": 0}, {"value": 1}]}},
              {"model": "{{{parents.B}}}", "parameters": {"weight": 1}}]}
            """, "/"));
        Assert.Equal(b.Get("net.1.weight").Values, mixed.Get("net.1.weight").Values);
        var expected = MergeMethods.Linear([a.Get("net.3.weight").Values, b.Get("net.3.weight").Values], [1, 1], true);
        Assert.Equal(expected, mixed.Get("net.3.weight").Values);
    }

    [Fact]
    public void Stacking_a_models_own_layers_reproduces_it_and_a_scale_multiplies_the_layer_output()
    {
        var merger = new Merger();
        var a = MergeModel.Load(parents.A);
        var same = merger.Merge(Recipe($$"""{"merge_method": "passthrough", "slices": [{"model": "{{parents.A}}", "layer_range": [0, 3]}]}""", "/"));
        Assert.Equal(Logits(a, parents.Splits.Test), Logits(same, parents.Splits.Test));

        // the head scaled by 2 doubles the logits (weight and bias)
        var scaled = merger.Merge(Recipe($$"""
            {"merge_method": "passthrough", "slices": [{"model": "{{parents.A}}", "layer_range": [0, 2]}, {"model": "{{parents.A}}", "layer_range": [2, 3], "scale": 2}]}
            """, "/"));
        var l1 = Logits(a, parents.Splits.Test);
        var l2 = Logits(scaled, parents.Splits.Test);
        for (int i = 0; i < l1.Length; i++) Assert.Equal(2 * l1[i], l2[i], 4);

        // a deeper child: the 32→32 layer of b inserted twice; the spec follows the path
        var deeper = merger.Merge(Recipe($$"""
            {"merge_method": "passthrough", "slices": [{"model": "{{parents.A}}", "layer_range": [0, 2]}, {"model": "{{parents.B}}", "layer_range": [1, 2], "scale": 0.5},
              {"model": "{{parents.B}}", "layer_range": [1, 3]}]}
            """, "/"));
        Assert.Equal([32, 32, 32, 32], deeper.Spec!.Hidden);
        Assert.Equal(5, deeper.Layers.Count);
    }

    [Fact]
    public void A_saved_child_is_a_checkpoint_the_runtime_loads_and_keep_prunes_it()
    {
        var merger = new Merger();
        var child = merger.Merge(Recipe($$$"""
            {"merge_method": "ties", "base_model": "{{{parents.Base}}}", "models": [{"model": "{{{parents.A}}}", "parameters": {"density": 0.5}}, {"model": "{{{parents.B}}}", "parameters": {"density": 0.5}}],
             "parameters": {"keep": [{"filter": "net.1.", "value": 0.25}, {"value": 1}]}}
            """, "/"));
        var w = child.Get("net.1.weight").Values;
        Assert.Equal(w.Length / 4, w.Count(v => v != 0));
        Assert.All(child.Get("net.1.bias").Values, v => Assert.NotEqual(0, v)); // biases are not pruned
        var path = parents.File("child.safetensors");
        child.Save(path, "{}");
        var loaded = ClassifierModel.Load(path);
        Assert.Equal("{}", loaded.Metadata["coldmind.merge"]);
        Assert.NotNull(loaded.Compact);
        Assert.Equal(child.Get("net.5.bias").Values, loaded.Compact!.Head().Bias);
    }

    [Fact]
    public void Ternarized_inputs_merge_the_weights_the_forward_pass_sees()
    {
        var spec = ClassifierSpec.ForMlp([64], 10, [32], ternary: true);
        var meta = new Provenance { Spec = spec }.ToMetadata();
        string p1 = parents.File("t1.safetensors"), p2 = parents.File("t2.safetensors");
        TensorFile.Write(p1, spec.Build(new Rng(1)).NamedParameters(), meta);
        TensorFile.Write(p2, spec.Build(new Rng(2)).NamedParameters(), meta);
        var merger = new Merger();
        var merged = merger.Merge(Recipe($$"""{"merge_method": "linear", "models": [{"model": "{{p1}}"}, {"model": "{{p2}}"}], "ternary": "ternarized"}""", "/"));
        // each input weight is scale × trit: the average of two such has at most 3 × 3 distinct values
        Assert.True(merged.Get("net.1.weight").Values.Distinct().Count() <= 9);
        var latent = merger.Merge(Recipe($$"""{"merge_method": "linear", "models": [{"model": "{{p1}}"}, {"model": "{{p2}}"}]}""", "/"));
        Assert.True(latent.Get("net.1.weight").Values.Distinct().Count() > 100);
        Assert.Equal(latent.Get("net.3.weight").Values, merged.Get("net.3.weight").Values); // the float head is merged as it is

        // evolution in ternarized form: every candidate and every hand-set recipe merges scale × trits
        var judge = new ClassifierJudge(parents.Splits.Validation, parents.Splits.Test, null);
        var evolution = new MergeEvolution(merger, [ModelSource.File(p1), ModelSource.File(p2)], null, judge,
            new EvolutionOptions { Space = MergeSpace.Params, Method = "linear", Generations = 2, Ternarized = true });
        var result = evolution.Run();
        Assert.True(result.Recipe.Ternarized);
        Assert.All(evolution.HandSet(), h => Assert.True(h.Recipe.Ternarized));
        Assert.True(result.Child.Get("net.1.weight").Values.Distinct().Count() <= 9);
    }

    [Theory]
    [InlineData("", "is empty")]
    [InlineData("[]", "empty or not a JSON object")]
    [InlineData("{}", "no \"merge_method\"")]
    [InlineData("{\"merge_method\": \"soup\", \"models\": []}", "unknown merge_method 'soup'")]
    [InlineData("{\"merge_method\": \"linear\"}", "lists no models")]
    [InlineData("{\"merge_method\": \"ties\", \"models\": [{\"model\": \"a.safetensors\"}]}", "needs a \"base_model\"")]
    [InlineData("{\"merge_method\": \"linear\", \"modles\": []}", "unknown key \"modles\"")]
    [InlineData("{\"merge_method\": \"linear\", \"models\": [{\"model\": \"a\", \"parameters\": {\"weight\": \"x\"}}]}", "must be a finite number")]
    [InlineData("{\"merge_method\": \"passthrough\", \"slices\": [{\"model\": \"a\", \"layer_range\": [2, 1]}]}", "is empty or negative")]
    public void Bad_recipes_get_a_clear_message(string json, string expected)
    {
        var e = Assert.Throws<ColdmindException>(() => MergeRecipe.Parse(json, "/"));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Mismatched_parents_are_refused_by_name()
    {
        var wide = ClassifierSpec.ForMlp([1, 8, 8], 10, [48, 32]);
        var path = parents.File("wide.safetensors");
        TensorFile.Write(path, wide.Build(new Rng(0)).NamedParameters(), new Provenance { Spec = wide }.ToMetadata());
        var e = Assert.Throws<ColdmindException>(() => new Merger().Merge(Recipe($$"""{"merge_method": "linear", "models": [{"model": "{{parents.A}}"}, {"model": "{{path}}"}]}""", "/")));
        Assert.Contains("does not match", e.Message);
        Assert.Contains("MLP 64-48-32-10", e.Message);
        e = Assert.Throws<ColdmindException>(() => new Merger().Merge(Recipe($$"""{"merge_method": "passthrough", "slices": [{"model": "{{parents.A}}", "layer_range": [0, 1]}, {"model": "{{path}}", "layer_range": [1, 3]}]}""", "/")));
        Assert.Contains("takes 48 inputs", e.Message);
    }

    [Fact]
    public void Evolution_in_both_spaces_beats_both_parents_and_a_budget_picks_a_cheaper_child()
    {
        var merger = new Merger();
        var sources = new[] { ModelSource.File(parents.A), ModelSource.File(parents.B) };
        var judge = new ClassifierJudge(parents.Splits.Validation, parents.Splits.Test, null);
        var free = new MergeEvolution(merger, sources, ModelSource.File(parents.Base), judge, new EvolutionOptions { Generations = 24, Seed = 1 }).Run();
        double parentBest = sources.Max(s => judge.Judge(merger.Load(s), test: true).Score);
        double child = judge.Judge(free.Child, test: true).Score;
        Assert.True(child > parentBest + 0.05, $"child {child:P1}, best parent {parentBest:P1}");
        Assert.Equal(24, free.History.Count);
        Assert.True(free.History.Zip(free.History.Skip(1)).All(p => p.Second.BestScore >= p.First.BestScore || p.Second.Space != p.First.Space));

        // the same parents under a joules budget below what the unconstrained child costs on a microcontroller
        var device = DeviceProfile.Load("stm32h7", null);
        var work = Workload.Of(ClassifierModel.Of(CompactClassifier.Compile(free.Child.ToClassifier()), "free"));
        double freeJoules = CostModel.Estimate(work, device).Joules;
        var budget = new DeviceBudget(device, new Budget(MaxJoules: 0.7 * freeJoules));
        var constrained = new MergeEvolution(merger, sources, ModelSource.File(parents.Base), new ClassifierJudge(parents.Splits.Validation, parents.Splits.Test, budget),
            new EvolutionOptions { Generations = 12, Seed = 1, Sparsify = true }).Run();
        Assert.True(constrained.Judgement.Feasible, constrained.Judgement.Reason);
        Assert.True(constrained.Judgement.Joules <= 0.7 * freeJoules);
        Assert.True(constrained.Judgement.Bytes < work.WeightBytes);
    }
}
