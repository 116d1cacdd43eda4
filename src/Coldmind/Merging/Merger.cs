using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Merging;

/// <summary>
/// Carries out a <see cref="MergeRecipe"/>. Files are read once and kept, so an evolutionary search that builds
/// hundreds of children from the same parents reads each parent once.
/// </summary>
public sealed class Merger
{
    private readonly Dictionary<string, MergeModel> _files = [];
    private readonly Dictionary<MergeRecipe, MergeModel> _nested = new(ReferenceEqualityComparer.Instance);

    public MergeModel Load(ModelSource source) =>
        source.Recipe is { } nested ? (_nested.TryGetValue(nested, out var merged) ? merged : _nested[nested] = Merge(nested))
        : _files.TryGetValue(System.IO.Path.GetFullPath(source.Path!), out var m) ? m
        : _files[System.IO.Path.GetFullPath(source.Path!)] = MergeModel.Load(source.Path!);

    public MergeModel Merge(MergeRecipe recipe, string name = "merged")
    {
        recipe.Validate();
        var child = recipe.Method == "passthrough" ? Passthrough(recipe, name) : MergeParameters(recipe, name);
        return recipe.Parameters.TryGetValue("keep", out var keep) ? Sparsify(child, keep) : child;
    }

    private MergeModel MergeParameters(MergeRecipe recipe, string name)
    {
        var models = recipe.Models.Select(m => Inputs(Load(m.Source), recipe.Ternarized)).ToList();
        var @base = recipe.Base is { } b ? Inputs(Load(b), recipe.Ternarized) : null;
        var reference = @base ?? models[0];
        foreach (var m in models) reference.RequireSameShape(m);
        var rng = new Rng(recipe.Seed);
        var values = new List<float[]>(reference.Tensors.Count);
        foreach (var tensor in reference.Tensors)
        {
            string n = tensor.Name;
            float Global(string p, float fallback) => recipe.Parameters.GetValueOrDefault(p)?.For(n) ?? fallback;
            float Of(RecipeModel m, string p, float fallback) => m.Parameters.GetValueOrDefault(p)?.For(n) ?? Global(p, fallback);
            var inputs = models.Select(m => m.Get(n).Values).ToList();
            var weights = recipe.Models.Select(m => Of(m, "weight", 1f)).ToList();
            var densities = recipe.Models.Select(m => Of(m, "density", 1f)).ToList();
            float lambda = Global("lambda", 1f);
            var baseValues = @base?.Get(n).Values;
            values.Add(recipe.Method switch
            {
                "linear" => MergeMethods.Linear(inputs, weights, Global("normalize", 1) != 0),
                "task_arithmetic" => MergeMethods.TaskArithmetic(baseValues!, inputs, weights, lambda, Global("normalize", 0) != 0),
                "ties" => MergeMethods.Ties(baseValues!, inputs, weights, densities, lambda, Global("normalize", 1) != 0),
                "dare_linear" => MergeMethods.Dare(baseValues!, inputs, weights, densities, lambda, Global("normalize", 0) != 0, signConsensus: false, rng),
                "dare_ties" => MergeMethods.Dare(baseValues!, inputs, weights, densities, lambda, Global("normalize", 1) != 0, signConsensus: true, rng),
                _ => MergeMethods.Slerp(baseValues!, inputs[0], Of(recipe.Models[0], "t", 0.5f)),
            });
        }
        return reference.With(name, values);
    }

    private MergeModel Passthrough(MergeRecipe recipe, string name)
    {
        var steps = new List<(MergeModel, int, float)>();
        foreach (var slice in recipe.Slices)
        {
            var source = Inputs(Load(slice.Source), recipe.Ternarized);
            if (slice.End > source.Layers.Count)
                throw new ColdmindException($"layer_range [{slice.Start}, {slice.End}) is past the end of '{source.Name}', which has {source.Layers.Count} layers.");
            for (int l = slice.Start; l < slice.End; l++) steps.Add((source, l, slice.Scale));
        }
        var frame = recipe.Base is { } b ? Load(b) : steps[0].Item1;
        return MergeModel.Stack(steps, frame, name);
    }

    /// <summary>
    /// The "keep" parameter: each layer's weight matrices keep their largest-magnitude fraction and the rest
    /// become zeros, which the compact classifier stores and runs sparse, so a device budget can trade
    /// accuracy for bytes and joules.
    /// </summary>
    private static MergeModel Sparsify(MergeModel model, MergeParameter keep)
    {
        var values = model.Tensors.Select(t =>
        {
            bool matrix = t.Shape.Length >= 2 && model.Layers.Any(l => t.Name.StartsWith(l, StringComparison.Ordinal));
            return matrix && keep.For(t.Name) is { } fraction and < 1 ? MergeMethods.KeepLargest(t.Values, fraction) : t.Values;
        }).ToList();
        return model.With(model.Name, values);
    }

    /// <summary>
    /// A ternary classifier's BitLinear weights as the forward pass sees them (absmean scale × trits) when the
    /// recipe merges ternarized weights; otherwise the model as stored (a ternary model's latent float weights).
    /// </summary>
    private static MergeModel Inputs(MergeModel model, bool ternarized)
    {
        if (!ternarized || model.Spec is not { Ternary: true }) return model;
        var values = model.Tensors.Select(t =>
        {
            bool bitLinear = t.Shape.Length == 2 && model.Layers.Take(model.Layers.Count - 1).Any(l => t.Name == l + "weight");
            if (!bitLinear) return t.Values;
            var trits = new sbyte[t.Values.Length];
            float scale = BitNetQuantizer.Ternarize(t.Values, trits);
            return trits.Select(v => v * scale).ToArray();
        }).ToList();
        return model.With(model.Name, values);
    }
}
