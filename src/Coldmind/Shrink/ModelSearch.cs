using Coldmind.Numerics;
using Coldmind.Cost;
using Coldmind.Data;
using Coldmind.Nn;
using Coldmind.Quantization;
using Coldmind.Runtime.Classifier;
using Coldmind.Tensors;

namespace Coldmind.Shrink;

/// <summary>One layer's choice: how its weights are rounded (null: float32) and the fraction pruned.</summary>
public sealed record LayerChoice(PtqMethod? Bits, double Sparsity)
{
    public string Name => $"{(Bits?.ToString().ToLowerInvariant() ?? "f32")}@{Sparsity:P0}";
    /// <summary>The rounding as a scheme (a scale per 32 weights), null for float32.</summary>
    public PtqScheme? Scheme => Bits is { } m ? new PtqScheme(m, ModelSearch.GroupSize) : null;
}

/// <summary>A candidate: a choice per layer and what it scores (validation accuracy, bytes, and joules and seconds per inference estimated on the device).</summary>
public sealed record Candidate(LayerChoice[] Layers, float Accuracy, long Bytes, double Joules, double Seconds)
{
    public string Describe() => string.Join(" | ", Layers.Select(l => l.Name));

    /// <summary>How far the candidate is over <paramref name="budget"/> (0: within).</summary>
    public double Violation(Budget budget) => budget.Violation(Bytes, Joules, Seconds);
}

/// <summary>
/// "Models that optimize models": NSGA-II (Deb et al. 2002) over per-layer bit width (ternary, 2, 4, 8 bit, float)
/// and sparsity (magnitude pruning to 0, 50, 75 or 90 %) of a trained MLP, maximising validation accuracy while
/// minimising bytes and estimated joules, under a budget handled by constrained domination (a feasible candidate
/// beats an infeasible one; two infeasible ones compare by violation). A candidate is scored after training, by
/// rounding and pruning the trained weights: fast enough to score thousands. Its bytes and work are those of
/// its compiled form (<see cref="CompactClassifier"/>: packed codes, CSR where smaller), so the chosen one is
/// what <see cref="Deploy"/> writes, after fine-tuning with its masks held.
/// </summary>
public static class ModelSearch
{
    public const int GroupSize = 32;
    public static readonly PtqMethod?[] BitChoices = [PtqMethod.Ternary, PtqMethod.Int2, PtqMethod.Int4, PtqMethod.Int8, null];
    public static readonly double[] SparsityChoices = [0, 0.5, 0.75, 0.9];

    /// <param name="model">the trained model whose weights are pruned and rounded</param>
    /// <param name="build">a fresh model of the same shape, to load each candidate's weights into</param>
    public static (IReadOnlyList<Candidate> Front, IReadOnlyList<Candidate> All) Run(Module model, Func<Module> build, Dataset validation, Budget budget, DeviceProfile device,
        int population = 32, int generations = 20, ulong seed = 0,
        IProgress<StageProgress>? progress = null)
    {
        var weights = model.NamedParameters().Where(p => p.Tensor.Rank >= 2).ToArray();
        if (weights.Length == 0) throw new ColdmindException("The model has no weight matrices to search over.");
        if (population < 4 || generations < 1) throw new ColdmindException($"A search needs a population of at least 4 and one generation, got {population} and {generations}.");
        var rng = new Rng(seed);
        var cache = new Dictionary<string, Candidate>();
        Candidate Score(LayerChoice[] genome)
        {
            string key = string.Join(",", genome.Select(g => g.Name));
            if (cache.TryGetValue(key, out var known)) return known;
            return cache[key] = Evaluate(model, build(), genome, validation, device);
        }
        LayerChoice Random() => new(BitChoices[rng.NextInt(BitChoices.Length)], SparsityChoices[rng.NextInt(SparsityChoices.Length)]);
        // seed the population with the two extremes so the front spans them
        var people = new List<Candidate>
        {
            Score(weights.Select(_ => new LayerChoice(null, 0)).ToArray()),
            Score(weights.Select(_ => new LayerChoice(PtqMethod.Ternary, 0.9)).ToArray()),
        };
        while (people.Count < population) people.Add(Score(weights.Select(_ => Random()).ToArray()));
        for (int g = 0; g < generations; g++)
        {
            var ranked = Rank(people, budget);
            var children = new List<Candidate>();
            while (children.Count < population)
            {
                var a = Tournament(ranked, rng);
                var b = Tournament(ranked, rng);
                var child = a.Layers.Select((l, i) => rng.NextInt(2) == 0 ? l : b.Layers[i]).ToArray(); // uniform crossover
                for (int i = 0; i < child.Length; i++)
                    if (rng.NextDouble() < 1.0 / child.Length) child[i] = rng.NextInt(2) == 0 ? child[i] with { Bits = BitChoices[rng.NextInt(BitChoices.Length)] } : child[i] with { Sparsity = SparsityChoices[rng.NextInt(SparsityChoices.Length)] };
                children.Add(Score(child));
            }
            people = Rank([.. people, .. children], budget).Take(population).Select(r => r.Candidate).ToList();
            progress?.Report(new StageProgress("search", g + 1, generations));
        }
        var all = cache.Values.ToList();
        var front = Rank(all, budget).Where(r => r.Front == 0).Select(r => r.Candidate).DistinctBy(c => (c.Accuracy, c.Bytes)).OrderBy(c => c.Bytes).ToList();
        return (front, all);
    }

    /// <summary>The trained model's weights pruned by magnitude within each layer as <paramref name="genome"/> says, not yet rounded.</summary>
    public static Dictionary<string, Tensor> Prune(Module model, LayerChoice[] genome)
    {
        var state = model.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor);
        var matrices = model.NamedParameters().Where(p => p.Tensor.Rank >= 2).ToArray();
        for (int i = 0; i < matrices.Length; i++)
        {
            if (genome[i].Sparsity == 0) continue;
            var (name, t) = matrices[i];
            var w = t.ToArray();
            var sorted = w.Select(MathF.Abs).Order().ToArray();
            float threshold = sorted[(int)(genome[i].Sparsity * (sorted.Length - 1))];
            for (int k = 0; k < w.Length; k++) if (MathF.Abs(w[k]) <= threshold) w[k] = 0;
            state[name] = Tensor.FromArray(w, t.Shape);
        }
        return state;
    }

    /// <summary>The trained model with <paramref name="genome"/> applied: pruned, then rounded (dequantized, for a float forward pass).</summary>
    public static Dictionary<string, Tensor> Apply(Module model, LayerChoice[] genome)
    {
        var state = Prune(model, genome);
        var matrices = model.NamedParameters().Where(p => p.Tensor.Rank >= 2).Select(p => p.Name).ToArray();
        for (int i = 0; i < matrices.Length; i++)
            if (genome[i].Scheme is { } scheme)
            {
                var t = state[matrices[i]];
                state[matrices[i]] = Tensor.FromArray(scheme.Apply(t.ToArray(), t.Numel / t.Shape[0]), t.Shape);
            }
        return state;
    }

    /// <summary>
    /// The chosen candidate as a model to deploy: the trained weights pruned as <paramref name="genome"/> says,
    /// trained further with those masks held when <paramref name="fineTune"/> has epochs, then compiled with the
    /// genome's rounding.
    /// </summary>
    public static CompactClassifier Deploy(Module model, Module fresh, LayerChoice[] genome, Dataset train, Dataset validation, TrainOptions fineTune,
        IReadOnlyDictionary<string, string>? metadata = null, IProgress<StageProgress>? progress = null)
    {
        fresh.LoadState(Prune(model, genome));
        if (fineTune.Epochs > 0)
            Trainer.Fit(fresh, train, validation, fineTune with { Mask = PruningMask.OfZeros(fresh) }, progress.As("fine-tune"));
        return CompactClassifier.Compile(fresh, metadata, genome.Select(g => g.Scheme).ToArray());
    }

    private static Candidate Evaluate(Module model, Module trial, LayerChoice[] genome, Dataset validation, DeviceProfile device)
    {
        trial.LoadState(Prune(model, genome));
        var compact = CompactClassifier.Compile(trial, schemes: genome.Select(g => g.Scheme).ToArray());
        trial.LoadState(Apply(model, genome));
        float accuracy = Trainer.Accuracy(trial, validation);
        var cost = CostModel.Estimate(Workload.FromClassifier(compact, "candidate"), device);
        return new Candidate(genome, accuracy, compact.WeightBytes, cost.Joules, cost.Seconds);
    }

    private sealed record Ranked(Candidate Candidate, int Front, double Crowding);

    /// <summary>Non-dominated sorting with constrained domination, then crowding distance within each front; best first.</summary>
    private static List<Ranked> Rank(List<Candidate> people, Budget budget)
    {
        bool Dominates(Candidate a, Candidate b)
        {
            double va = a.Violation(budget), vb = b.Violation(budget);
            if (va != vb) return va < vb;
            bool noWorse = a.Accuracy >= b.Accuracy && a.Bytes <= b.Bytes && a.Joules <= b.Joules;
            bool better = a.Accuracy > b.Accuracy || a.Bytes < b.Bytes || a.Joules < b.Joules;
            return noWorse && better;
        }
        var remaining = people.Distinct().ToList(); // the cache hands out one object per genome
        var ranked = new List<Ranked>();
        for (int front = 0; remaining.Count > 0; front++)
        {
            var layer = remaining.Where(p => !remaining.Any(q => Dominates(q, p))).ToList();
            var crowding = layer.ToDictionary(c => c, _ => 0.0);
            foreach (var objective in new Func<Candidate, double>[] { c => c.Accuracy, c => c.Bytes, c => c.Joules })
            {
                var sorted = layer.OrderBy(objective).ToList();
                double span = objective(sorted[^1]) - objective(sorted[0]);
                crowding[sorted[0]] = crowding[sorted[^1]] = double.PositiveInfinity;
                for (int i = 1; i + 1 < sorted.Count; i++)
                    crowding[sorted[i]] += span > 0 ? (objective(sorted[i + 1]) - objective(sorted[i - 1])) / span : 0;
            }
            ranked.AddRange(layer.OrderByDescending(c => crowding[c]).Select(c => new Ranked(c, front, crowding[c])));
            remaining.RemoveAll(layer.Contains);
        }
        return ranked;
    }

    private static Candidate Tournament(List<Ranked> ranked, Rng rng)
    {
        var a = ranked[rng.NextInt(ranked.Count)];
        var b = ranked[rng.NextInt(ranked.Count)];
        return (a.Front, -a.Crowding).CompareTo((b.Front, -b.Crowding)) <= 0 ? a.Candidate : b.Candidate;
    }
}
