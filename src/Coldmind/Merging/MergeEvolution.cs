using Coldmind.Tensors;

namespace Coldmind.Merging;

public enum MergeSpace { Params, DataFlow, Both }

public sealed record EvolutionOptions
{
    public MergeSpace Space { get; init; } = MergeSpace.Both;
    /// <summary>Parameter-space method: linear, task_arithmetic, ties, dare_linear or dare_ties (the last four need a base).</summary>
    public string Method { get; init; } = "ties";
    public int Generations { get; init; } = 30;
    /// <summary>Candidates per generation; 0 takes CMA-ES's default, 4 + ⌊3 ln n⌋.</summary>
    public int Population { get; init; }
    /// <summary>Data-flow space: how many times each layer of each source may appear along the path.</summary>
    public int Repetitions { get; init; } = 2;
    public double Sigma { get; init; } = 0.2;
    /// <summary>
    /// Adds genes that prune the child's weight matrices by magnitude (the recipe's "keep"): per layer in parameter
    /// space, one for the whole path in data-flow space. Set when a device budget binds, so cost can be traded for accuracy.
    /// </summary>
    public bool Sparsify { get; init; }
    /// <summary>Ternary classifiers: merge the weights the forward pass sees (scale × trits) instead of the latent float weights; every recipe says "ternary": "ternarized".</summary>
    public bool Ternarized { get; init; }
    public ulong Seed { get; init; }
}

public sealed record GenerationReport(string Space, int Generation, double BestScore, double MeanScore, int Evaluations);

public sealed record EvolutionResult(MergeRecipe Recipe, MergeModel Child, Judgement Judgement, IReadOnlyList<GenerationReport> History);

/// <summary>
/// Evolutionary model merging (after Akiba et al., "Evolutionary Optimization of Model Merging Recipes", 2024)
/// with CMA-ES. In parameter space the genome is a weight (and, for TIES/DARE, a density) per parent and layer;
/// in data-flow space it is the path an input takes: which layers of which source, in order, each with an
/// output scale: for every repetition, layer and source a gene says whether that layer is on the path. "Both"
/// evolves parameters first, then a path through the layers of the merged child and the parents. Every
/// candidate is a <see cref="MergeRecipe"/>, so the winner is written as a recipe `coldmind merge` reproduces.
/// Fitness is the judge's score on held-out data, with every child within the device budget ranked above
/// every child outside it.
/// </summary>
public sealed class MergeEvolution(Merger merger, IReadOnlyList<ModelSource> parents, ModelSource? @base, IChildJudge judge, EvolutionOptions options)
{
    private static readonly string[] BaseMethods = ["task_arithmetic", "ties", "dare_linear", "dare_ties"];

    public EvolutionResult Run(Action<GenerationReport>? onGeneration = null)
    {
        if (parents.Count < 2) throw new ColdmindException($"Evolution needs at least two parents, got {parents.Count}.");
        if (options.Generations < 1) throw new ColdmindException($"--generations must be at least 1, got {options.Generations}.");
        if (options.Repetitions < 1) throw new ColdmindException($"--repetitions must be at least 1, got {options.Repetitions}.");
        if (options.Space != MergeSpace.DataFlow)
        {
            if (!BaseMethods.Contains(options.Method) && options.Method != "linear")
                throw new ColdmindException($"--method {options.Method} cannot be evolved; use linear, task_arithmetic, ties, dare_linear or dare_ties.");
            if (options.Method != "linear" && @base == null) throw new ColdmindException($"--method {options.Method} needs --base, the model the parents were fine-tuned from; or use --method linear.");
        }
        var reference = merger.Load(parents[0]);
        foreach (var p in parents.Skip(1))
            if (options.Space == MergeSpace.DataFlow) reference.RequireStackable(merger.Load(p));
            else reference.RequireSameShape(merger.Load(p));
        if (@base != null && options.Space != MergeSpace.DataFlow) reference.RequireSameShape(merger.Load(@base));

        var history = new List<GenerationReport>();
        void Report(GenerationReport r) { history.Add(r); onGeneration?.Invoke(r); }
        var rng = new Rng(options.Seed);
        (MergeRecipe Recipe, MergeModel Child, Judgement Judgement) best;
        switch (options.Space)
        {
            case MergeSpace.Params:
                best = Search("params", ParamsGenome(reference), options.Generations, rng, Report);
                break;
            case MergeSpace.DataFlow:
                best = Search("dataflow", PathGenome(parents), options.Generations, rng, Report);
                break;
            default:
                int first = (options.Generations + 1) / 2;
                var merged = Search("params", ParamsGenome(reference), first, rng, Report);
                best = options.Generations - first == 0 ? merged
                    : Search("dataflow", PathGenome([ModelSource.Of(merged.Recipe), .. parents]), options.Generations - first, rng, Report);
                if (Judgement.Compare(merged.Judgement, best.Judgement) > 0) best = merged;
                break;
        }
        return new EvolutionResult(best.Recipe, best.Child, best.Judgement, history);
    }

    /// <summary>Recipes a person would write without a search: plain averaging and, given a base, task arithmetic and TIES with mergekit's usual values.</summary>
    public IReadOnlyList<(string Name, MergeRecipe Recipe)> HandSet()
    {
        var list = new List<(string, MergeRecipe)>
        {
            ("average", new MergeRecipe("linear", null, parents.Select(p => Model(p, ("weight", 1f))).ToList(), new Dictionary<string, MergeParameter>(), [], options.Ternarized)),
        };
        if (@base != null)
        {
            list.Add(("task arithmetic (weights 1)", new MergeRecipe("task_arithmetic", @base, parents.Select(p => Model(p, ("weight", 1f))).ToList(), new Dictionary<string, MergeParameter>(), [], options.Ternarized)));
            list.Add(("TIES (density 0.5, weights 1)", new MergeRecipe("ties", @base, parents.Select(p => Model(p, ("weight", 1f), ("density", 0.5f))).ToList(), new Dictionary<string, MergeParameter>(), [], options.Ternarized)));
        }
        return list;
    }

    private static RecipeModel Model(ModelSource source, params (string Name, float Value)[] parameters) =>
        new(source, parameters.ToDictionary(p => p.Name, p => MergeParameter.Of(p.Value)));

    private sealed record Genome(double[] Start, Func<double[], MergeRecipe> Decode);

    private (MergeRecipe Recipe, MergeModel Child, Judgement Judgement) Search(string space, Genome genome, int generations, Rng rng, Action<GenerationReport> report)
    {
        int evaluations = 0;
        (MergeRecipe Recipe, MergeModel Child, Judgement Judgement) Evaluate(double[] x)
        {
            evaluations++;
            var recipe = genome.Decode(x);
            try
            {
                var child = merger.Merge(recipe, "child");
                return (recipe, child, judge.Judge(child));
            }
            catch (ColdmindException e) // a path whose widths do not chain
            {
                return (recipe, null!, new Judgement(double.NegativeInfinity, 0, 0, null, null, double.MaxValue, e.Message));
            }
        }
        var best = Evaluate(genome.Start);
        var cma = new CmaEs(genome.Start, options.Sigma, rng.Fork(), options.Population);
        for (int g = 1; g <= generations; g++)
        {
            var xs = cma.Ask();
            var results = xs.Select(Evaluate).ToArray();
            var ranked = Enumerable.Range(0, xs.Length).OrderByDescending(k => results[k].Judgement, Comparer<Judgement>.Create(Judgement.Compare)).ToArray();
            var losses = new double[xs.Length];
            for (int r = 0; r < ranked.Length; r++) losses[ranked[r]] = r;
            cma.Tell(xs, losses);
            var top = results[ranked[0]];
            if (Judgement.Compare(top.Judgement, best.Judgement) > 0) best = top;
            var finite = results.Where(r => double.IsFinite(r.Judgement.Score)).Select(r => r.Judgement.Score).ToList();
            report(new GenerationReport(space, g, best.Judgement.Score, finite.Count > 0 ? finite.Average() : double.NaN, evaluations));
        }
        return best;
    }

    /// <summary>
    /// A weight per parent and layer (and a density, for TIES and DARE; a keep fraction per layer when sparsifying),
    /// starting from the hand-set recipe (weights 1, or 1/n for an average; density 0.5; keep 1). Weights are
    /// clamped to [0, 2], densities and keep fractions to [0.05, 1].
    /// </summary>
    private Genome ParamsGenome(MergeModel reference)
    {
        string method = options.Method;
        bool density = method is "ties" or "dare_linear" or "dare_ties";
        // one group per layer; a language model's embedding and head form one more group, the default entry
        var filters = reference.Layers.Select(l => (string?)l).ToList();
        if (reference.FrameTensors().Any()) filters.Add(null);
        int groups = filters.Count, n = parents.Count;
        float startWeight = method == "linear" ? 1f / n : 1f;
        int keepOffset = n * groups * (density ? 2 : 1);
        var start = new double[keepOffset + (options.Sparsify ? reference.Layers.Count : 0)];
        for (int i = 0; i < n * groups; i++) start[i] = startWeight;
        for (int i = n * groups; i < keepOffset; i++) start[i] = 0.5;
        for (int i = keepOffset; i < start.Length; i++) start[i] = 1;
        ulong seed = options.Seed;
        return new Genome(start, x =>
        {
            MergeParameter PerLayer(int offset, float lo, float hi) =>
                new(filters.Select((f, g) => (f, Math.Clamp((float)x[offset + g], lo, hi))).ToList());
            var models = parents.Select((p, i) =>
            {
                var ps = new Dictionary<string, MergeParameter> { ["weight"] = PerLayer(i * groups, 0, 2) };
                if (density) ps["density"] = PerLayer((n + i) * groups, 0.05f, 1);
                return new RecipeModel(p, ps);
            }).ToList();
            var global = new Dictionary<string, MergeParameter>();
            if (options.Sparsify)
                global["keep"] = new(reference.Layers.Select((l, g) => ((string?)l, Math.Clamp((float)x[keepOffset + g], 0.05f, 1))).ToList());
            return new MergeRecipe(method, method == "linear" ? null : @base, models, global, [], options.Ternarized, seed);
        });
    }

    /// <summary>
    /// The path genome over <paramref name="sources"/>. A classifier's path starts with an input layer and ends
    /// with a head, each from the source whose gene is largest; in between, for each repetition, inner layer and
    /// source in that order, a layer is on the path when its gene is positive (and its width fits), scaled by a
    /// second gene clamped to [0, 2]. A language model's path is made of blocks alone; its embedding and head come
    /// from the source whose frame gene is largest. The start is the first source's own path.
    /// </summary>
    private Genome PathGenome(IReadOnlyList<ModelSource> sources)
    {
        var models = sources.Select(merger.Load).ToList();
        bool lm = models[0].IsLanguageModel;
        var slots = new List<(int Source, int Layer)>();
        for (int r = 0; r < options.Repetitions; r++)
            for (int l = lm ? 0 : 1; l < models.Max(m => m.Layers.Count) - (lm ? 0 : 1); l++)
                for (int s = 0; s < models.Count; s++)
                    if (l < models[s].Layers.Count - (lm ? 0 : 1)) slots.Add((s, l));
        int heads = lm ? 1 : 2, choice = heads * models.Count;
        int keepGene = choice + 2 * slots.Count;
        var start = new double[keepGene + (options.Sparsify ? 1 : 0)];
        if (options.Sparsify) start[keepGene] = 1;
        for (int h = 0; h < heads; h++) start[h * models.Count] = 0.5;
        for (int k = 0; k < slots.Count; k++)
        {
            bool own = slots[k].Source == 0 && k < slots.Count / options.Repetitions;
            start[choice + 2 * k] = own ? 0.5 : -0.5;
            start[choice + 2 * k + 1] = 1;
        }
        return new Genome(start, x =>
        {
            int Pick(int h) => Enumerable.Range(0, models.Count).MaxBy(s => x[h * models.Count + s]);
            var slices = new List<LayerSlice>();
            int width = 0; // a classifier path's current width
            if (!lm)
            {
                int f = Pick(0);
                slices.Add(new LayerSlice(sources[f], 0, 1));
                width = models[f].LayerWidths(0).Out;
            }
            for (int k = 0; k < slots.Count; k++)
            {
                if (x[choice + 2 * k] <= 0) continue;
                var (s, l) = slots[k];
                if (!lm)
                {
                    if (models[s].LayerWidths(l).In != width) continue;
                    width = models[s].LayerWidths(l).Out;
                }
                slices.Add(new LayerSlice(sources[s], l, l + 1, Math.Clamp((float)x[choice + 2 * k + 1], 0, 2)));
            }
            if (!lm)
            {
                int h = Pick(1);
                slices.Add(new LayerSlice(sources[h], models[h].Layers.Count - 1, models[h].Layers.Count));
            }
            var global = new Dictionary<string, MergeParameter>();
            if (options.Sparsify) global["keep"] = MergeParameter.Of(Math.Clamp((float)x[keepGene], 0.05f, 1));
            return new MergeRecipe("passthrough", lm ? sources[Pick(0)] : null, [], global, slices, options.Ternarized);
        });
    }
}
