using System.Text.Json;
using Xunit;
using Coldmind.Models;
using Coldmind.Cost;
using Coldmind.Data;
using Coldmind.Formats;
using Coldmind.LmTraining;
using Coldmind.Merging;
using Coldmind.Nn;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class MergeMethodTests
{
    private static float[] V(params float[] xs) => xs;

    [Fact]
    public void Linear_is_a_weighted_average_or_a_weighted_sum()
    {
        var a = V(1, 2, 3);
        var b = V(3, 2, 1);
        Assert.Equal(V(2.5f, 2, 1.5f), MergeMethods.Linear([a, b], [1, 3], normalize: true));
        Assert.Equal(V(10, 8, 6), MergeMethods.Linear([a, b], [1, 3], normalize: false));
    }

    [Fact]
    public void Task_arithmetic_adds_weighted_task_vectors_to_the_base()
    {
        var @base = V(1, 1, 1);
        var result = MergeMethods.TaskArithmetic(@base, [V(2, 1, 0), V(1, 3, 1)], [1, 0.5f], lambda: 2, normalize: false);
        // τ = (1, 0, −1) and (0, 2, 0): base + 2·(τa + 0.5·τb)
        Assert.Equal(V(3, 3, -1), result);
    }

    [Fact]
    public void Ties_trims_elects_the_sign_and_averages_the_agreeing_values()
    {
        var @base = new float[4];
        var a = V(4, -1, 2, 0.1f);
        var b = V(2, 3, -3, 0.2f);
        // density 0.75 keeps the 3 largest magnitudes of each: a → (4, −1, 2, 0), b → (2, 3, −3, 0)
        // elected signs: +, +, −, 0; agreeing means: (4+2)/2, 3/1, −3/1, nothing
        var result = MergeMethods.Ties(@base, [a, b], [1, 1], [0.75f, 0.75f], lambda: 1, normalize: true);
        Assert.Equal(V(3, 3, -3, 0), result);
    }

    [Fact]
    public void Dare_keeps_the_expected_task_vector_and_drops_the_rest()
    {
        var rng = new Rng(3);
        var @base = new float[2000];
        var model = Enumerable.Range(0, 2000).Select(i => 1f + i % 7).ToArray();
        var merged = MergeMethods.Dare(@base, [model], [1], [0.3f], 1, normalize: false, signConsensus: false, rng);
        int kept = merged.Count(v => v != 0);
        Assert.InRange(kept, 500, 700); // 30 % of 2 000, give or take four standard deviations
        for (int i = 0; i < merged.Length; i++)
            if (merged[i] != 0) Assert.Equal(model[i] / 0.3f, merged[i], 4);
        Assert.Equal(model.Sum(), merged.Sum(), model.Sum() * 0.08); // the expectation holds on the total
    }

    [Fact]
    public void Slerp_ends_at_its_inputs_and_keeps_the_norm_between_orthogonal_ones()
    {
        var a = V(1, 0, 0);
        var b = V(0, 1, 0);
        Assert.Equal(a, MergeMethods.Slerp(a, b, 0));
        var end = MergeMethods.Slerp(a, b, 1);
        Assert.Equal(0, end[0], 5);
        Assert.Equal(1, end[1], 5);
        var middle = MergeMethods.Slerp(a, b, 0.5f);
        Assert.Equal(1, Math.Sqrt(middle.Sum(v => v * v)), 5); // a lerp would give 0.707
        Assert.Equal(V(2, 2, 2), MergeMethods.Slerp(V(1, 1, 1), V(3, 3, 3), 0.5f)); // parallel: linear
    }

    [Fact]
    public void Keep_largest_keeps_the_fraction_with_the_largest_magnitudes()
    {
        Assert.Equal(V(0, -5, 0, 4), MergeMethods.KeepLargest(V(1, -5, 2, 4), 0.5f));
        Assert.Equal(new float[4], MergeMethods.KeepLargest(V(1, -5, 2, 4), 0));
        Assert.Equal(V(3, -1, 1, 0, 0), MergeMethods.KeepLargest(V(3, -1, 1, 1, -1), 0.6f)); // ties at the threshold: first ones kept
    }
}

public class CmaEsTests
{
    [Fact]
    public void Minimises_an_ill_conditioned_non_separable_quadratic()
    {
        const int n = 8;
        var optimum = Enumerable.Range(0, n).Select(i => 0.5 + 0.1 * i).ToArray();
        double Loss(double[] x)
        {
            // a scaled quadratic in mixed coordinates (axis weights 1 to 100): only a learned covariance follows it quickly
            double sum = 0;
            for (int i = 0; i < n; i++)
            {
                double y = 0;
                for (int j = 0; j < n; j++) y += (x[j] - optimum[j]) * Math.Cos(0.3 * (i + 1) * (j + 1));
                sum += Math.Pow(100, (double)i / (n - 1)) * y * y;
            }
            return sum;
        }
        var cma = new CmaEs(new double[n], 0.5, new Rng(1));
        double best = double.MaxValue;
        for (int g = 0; g < 400 && best > 1e-10; g++)
        {
            var xs = cma.Ask();
            var losses = xs.Select(Loss).ToArray();
            best = Math.Min(best, losses.Min());
            cma.Tell(xs, losses);
        }
        Assert.True(best < 1e-10, $"best loss {best}");
        for (int i = 0; i < n; i++) Assert.Equal(optimum[i], cma.Mean[i], 3);
    }
}

/// <summary>Two digits classifiers fine-tuned from one initialisation on disjoint classes (0–4 and 5–9): parents to merge.</summary>
public sealed class DigitsParents : IDisposable
{
    private readonly TempDir _dir = new();
    public string Base { get; }
    public string A { get; }
    public string B { get; }
    public DataSplits Splits { get; } = BuiltinData.Load("digits", 0);
    public ClassifierSpec Spec { get; } = ClassifierSpec.ForMlp([1, 8, 8], 10, [32, 32]);

    public DigitsParents()
    {
        var meta = new Provenance { Spec = Spec }.ToMetadata();
        meta["coldmind.data"] = "digits";
        meta["coldmind.seed"] = "0";
        Base = _dir.File("base.safetensors");
        TensorFile.Write(Base, Spec.Build(new Rng(0)).NamedParameters(), meta);
        A = Train("a.safetensors", [0, 1, 2, 3, 4], meta);
        B = Train("b.safetensors", [5, 6, 7, 8, 9], meta);
    }

    public string File(string name) => _dir.File(name);

    private string Train(string name, int[] classes, Dictionary<string, string> meta)
    {
        var net = Spec.Build(new Rng(0));
        var train = Splits.Train.Subset(Enumerable.Range(0, Splits.Train.Count).Where(i => classes.Contains(Splits.Train.Labels[i])).ToArray());
        Trainer.Fit(net, train, null, new TrainOptions { Epochs = 8, BatchSize = 32, LearningRate = 3e-3f });
        string path = _dir.File(name);
        TensorFile.Write(path, net.NamedParameters(), meta);
        return path;
    }

    public void Dispose() => _dir.Dispose();
}

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

public class LanguageModelJudgeTests
{
    [Theory]
    [InlineData(false, 1e-4)]
    [InlineData(true, 2e-3)]
    public void The_judge_scores_a_written_model_as_the_trainer_scores_it(bool ternary, double tolerance)
    {
        string text = File.ReadAllText(SharedFiles.Require("data/text/tinyshakespeare.txt"))[..20_000];
        var vocabulary = new CharacterVocabulary(text);
        var ids = vocabulary.Encode(text);
        var model = new TinyLm(new TinyLmConfig(vocabulary.Size, Dim: 256, Layers: 1, Heads: 4, KvHeads: 4, FfnDim: 256, Ternary: ternary), new Rng(1));
        LmTrainer.Train(model, ids[..16_000], ids[16_000..], new LmTrainOptions(Steps: 10, Batch: 4, Context: 32, LearningRate: 3e-3f, EvalEvery: 10, EvalWindows: 8));
        using var dir = new TempDir();
        string path = dir.File("lm.gguf");
        TinyLmExport.Write(model, vocabulary, path, "lm");
        var loaded = MergeModel.Load(path);
        Assert.Equal(ternary, LanguageModelJudge.ConfigOf(loaded).Ternary);
        int[] held = vocabulary.Encode(text[16_000..]);
        Assert.Equal(held, CharacterVocabulary.FromTokens(vocabulary.Tokens, "test").Encode(text[16_000..]));
        var judgement = new LanguageModelJudge(held, held, 32, 8, null).Judge(loaded);
        double expected = LmTrainer.ValidationLoss(model, held, 32, 8);
        Assert.Equal(expected, -judgement.Score, tolerance);
        Assert.Equal(1, judgement.Layers);
    }
}

public class MergeCliTests(DigitsParents parents) : IClassFixture<DigitsParents>
{
    [Fact]
    public void Evolve_writes_a_child_and_a_recipe_that_merge_rebuilds_byte_for_byte()
    {
        string child = parents.File("evolved.safetensors"), recipe = parents.File("evolved.json"), report = parents.File("evolve.html"), rebuilt = parents.File("rebuilt.safetensors");
        var (exit, stdout, err) = CliTests.Run("evolve", "--parents", $"{parents.A},{parents.B}", "--base", parents.Base, "--space", "both", "--generations", "4",
            "--out", child, "--recipe-out", recipe, "--report", report, "--json");
        Assert.True(exit == 0, err);
        using var json = JsonDocument.Parse(stdout);
        var models = json.RootElement.GetProperty("models").EnumerateArray().ToList();
        Assert.Equal(6, models.Count); // two parents, three hand-set recipes, the child
        double childAccuracy = json.RootElement.GetProperty("child").GetProperty("test_accuracy").GetDouble();
        Assert.True(models.Where(m => m.GetProperty("role").GetString() == "parent").All(m => m.GetProperty("test_accuracy").GetDouble() < childAccuracy));
        Assert.Contains("<svg", File.ReadAllText(report));

        (exit, stdout, err) = CliTests.Run("merge", recipe, "--out", rebuilt, "--json");
        Assert.True(exit == 0, err);
        Assert.Equal(File.ReadAllBytes(child), File.ReadAllBytes(rebuilt));
    }

    [Fact]
    public void Bad_input_gives_one_message_and_writes_nothing()
    {
        string empty = parents.File("empty.json"), output = parents.File("never.safetensors");
        File.WriteAllText(empty, "");
        var (exit, _, err) = CliTests.Run("merge", empty, "--out", output);
        Assert.Equal(1, exit);
        Assert.Contains("empty", err);
        (exit, _, err) = CliTests.Run("evolve", "--parents", parents.A);
        Assert.Equal(1, exit);
        Assert.Contains("at least two", err);
        (exit, _, err) = CliTests.Run("evolve", "--parents", $"{parents.A},{parents.B}", "--max-joules", "0.001");
        Assert.Equal(1, exit);
        Assert.Contains("need --device", err);
        (exit, _, err) = CliTests.Run("evolve", "--parents", $"{parents.A},{parents.B}", "--method", "ties");
        Assert.Equal(1, exit);
        Assert.Contains("needs --base", err);
        (exit, _, err) = CliTests.Run("evolve", "--parents", $"{parents.A},{parents.B}", "--method", "linear", "--ternary", "ternarized");
        Assert.Equal(1, exit);
        Assert.Contains("is a float classifier", err);
        var cnn = ClassifierSpec.ForCnn([1, 8, 8], 10, [4], 16);
        string cnnPath = parents.File("cnn.safetensors");
        TensorFile.Write(cnnPath, cnn.Build(new Rng(0)).NamedParameters(), new Provenance { Spec = cnn }.ToMetadata());
        (exit, _, err) = CliTests.Run("evolve", "--parents", $"{parents.A},{cnnPath}", "--method", "linear", "--space", "params");
        Assert.Equal(1, exit);
        Assert.Contains("does not match", err);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(output)!, "*.tmp*"));
    }
}
