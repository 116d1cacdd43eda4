using Coldmind.Data;
using Coldmind.Nn;
using Coldmind.Tensors;

namespace Coldmind.Swarm;

/// <summary>
/// A quadratic pull towards <see cref="Anchor"/>: (λ/2) Σᵢ Fᵢ (wᵢ − aᵢ)². With F = 1 it is FedProx's proximal
/// term (anchor: the round's global model); with F the diagonal Fisher of an old task it is EWC (anchor: the
/// weights that solved that task).
/// </summary>
public sealed record Penalty(float[] Anchor, float Strength, float[]? Importance = null)
{
    /// <summary>
    /// The one pull both pulls make together (a FedAvg client's FedProx term and its EWC memory): a sum of quadratics
    /// is a quadratic, with importance λF + λ'F' and the anchor their importance-weighted mean, so the local steps
    /// keep a single implicit penalty step.
    /// </summary>
    public Penalty With(Penalty other)
    {
        var importance = new float[Anchor.Length];
        var anchor = new float[Anchor.Length];
        for (int i = 0; i < anchor.Length; i++)
        {
            float a = Strength * (Importance?[i] ?? 1f), b = other.Strength * (other.Importance?[i] ?? 1f);
            importance[i] = a + b;
            anchor[i] = importance[i] > 0 ? (a * Anchor[i] + b * other.Anchor[i]) / importance[i] : Anchor[i];
        }
        return new Penalty(anchor, 1f, importance);
    }
}

/// <summary>Local SGD settings of a device: steps per update, batch size, learning rate.</summary>
public sealed record LocalTraining(int Steps = 5, int BatchSize = 16, float LearningRate = 0.1f)
{
    public void Validate()
    {
        if (Steps < 1) throw new ColdmindException($"--local-steps must be at least 1, got {Steps}.");
        if (BatchSize < 1) throw new ColdmindException($"--batch must be at least 1, got {BatchSize}.");
        if (!(LearningRate > 0) || !float.IsFinite(LearningRate)) throw new ColdmindException($"--lr must be positive, got {LearningRate}.");
    }
}

/// <summary>
/// The model of a swarm node as one flat vector of parameters, and plain SGD on it through the autodiff engine.
/// Nodes hold only their vector (a node's memory is its parameters); one learner per thread lends them its
/// layers for the duration of a step. The architecture is an <see cref="Mlp"/> (no hidden layer: softmax
/// regression); every node built from the same <see cref="ModelId"/> starts from the same weights.
/// </summary>
public sealed class LocalLearner
{
    private readonly Module _model;
    private readonly Tensor[] _parameters;
    private readonly float[] _initial;

    public int ParameterCount { get; }
    public ulong Seed { get; }

    /// <summary>Fingerprint of architecture and initialisation: peers whose ids differ cannot exchange models.</summary>
    public ulong ModelId { get; }

    public LocalLearner(int inputs, IReadOnlyList<int> hidden, int classes, ulong seed)
    {
        if (inputs < 1 || classes < 2) throw new ColdmindException($"A swarm model needs inputs and at least 2 classes, got {inputs} inputs and {classes} classes.");
        if (hidden.Any(h => h < 1)) throw new ColdmindException($"--hidden sizes must be positive, got {string.Join(',', hidden)}.");
        Seed = seed;
        _model = new Mlp(inputs, hidden, classes, new Rng(seed));
        _parameters = _model.Parameters().ToArray();
        ParameterCount = _parameters.Sum(p => p.Numel);
        _initial = new float[ParameterCount];
        Store(_initial);
        ulong id = 1469598103934665603UL;
        foreach (long v in (long[])[inputs, classes, (long)seed, .. hidden.Select(h => (long)h)]) id = (id ^ (ulong)v) * 1099511628211UL;
        ModelId = id;
    }

    public static LocalLearner For(Dataset data, IReadOnlyList<int> hidden, ulong seed) => new(data.FeatureCount, hidden, data.Classes, seed);

    /// <summary>A fresh copy of the shared initial weights.</summary>
    public float[] Initial() => (float[])_initial.Clone();

    /// <summary>The shared initial weights, the reference compressed messages are coded against.</summary>
    public ReadOnlySpan<float> InitialWeights => _initial;

    /// <summary>
    /// <see cref="LocalTraining.Steps"/> SGD steps on mini-batches of distinct examples drawn from
    /// <paramref name="examples"/> (indices into <paramref name="data"/>), updating <paramref name="weights"/> in place;
    /// with a <paramref name="replay"/> pool, each batch is joined by as many remembered examples.
    /// </summary>
    public void Train(float[] weights, Dataset data, ReadOnlySpan<int> examples, LocalTraining o, Rng rng, Penalty? penalty = null, ReadOnlySpan<int> replay = default)
    {
        if (examples.Length == 0) return;
        var batches = RandomBatches(examples.ToArray(), o, rng);
        TrainOn(weights, data, replay.IsEmpty ? batches : Replayed(batches, replay.ToArray(), rng), o.LearningRate, penalty);
    }

    /// <summary>
    /// <see cref="Train"/> under example-level DP: each step is a DP-SGD step (per-example clipping and Gaussian
    /// noise, <see cref="Nn.Privacy.DpSgd"/>) that <paramref name="dp"/> accounts for; steps stop once one more would
    /// take ε past its target. Returns the steps taken. Replay is not offered: remembered examples would need their
    /// own accounting.
    /// </summary>
    public int TrainPrivately(float[] weights, Dataset data, ReadOnlySpan<int> examples, LocalTraining o, Rng rng, Privacy.DeviceDp dp, Penalty? penalty = null)
    {
        if (examples.Length == 0) return 0;
        Load(weights);
        var layers = Enumerable.Range(0, _parameters.Length / 2).Select(l => (_parameters[2 * l], _parameters[2 * l + 1])).ToArray();
        int taken = 0;
        foreach (var batch in RandomBatches(examples.ToArray(), o, rng))
        {
            if (!dp.CanStep(batch.Length)) break;
            var gradient = Nn.Privacy.DpSgd.Gradient(layers, data.Inputs(batch), data.LabelsAt(batch), dp.Options.Clip, dp.Options.NoiseMultiplier, dp.Noise, out _);
            int offset = 0;
            foreach (var p in _parameters)
            {
                p.ZeroGrad();
                p.AccumulateGrad(gradient.AsSpan(offset, p.Numel));
                offset += p.Numel;
            }
            Step(o.LearningRate, penalty);
            dp.Stepped(batch.Length);
            taken++;
        }
        Store(weights);
        return taken;
    }

    /// <summary>Each batch followed by as many examples drawn (with replacement) from the replay <paramref name="pool"/>.</summary>
    public static IEnumerable<int[]> Replayed(IEnumerable<int[]> batches, int[] pool, Rng rng) =>
        batches.Select(b => (int[])[.. b, .. Enumerable.Range(0, b.Length).Select(_ => pool[rng.NextInt(pool.Length)])]);

    /// <summary>SGD steps through the given batches in order (continual learning mixes its own batches).</summary>
    public void TrainOn(float[] weights, Dataset data, IEnumerable<int[]> batches, float learningRate, Penalty? penalty = null)
    {
        Load(weights);
        _model.Train();
        foreach (var batch in batches)
        {
            var loss = Tensor.CrossEntropy(_model.Forward(data.Inputs(batch)), data.LabelsAt(batch));
            foreach (var p in _parameters) p.ZeroGrad();
            loss.Backward();
            Step(learningRate, penalty);
        }
        Store(weights);
    }

    /// <summary>Each batch a partial Fisher–Yates shuffle of the pool: min(batch size, pool) distinct examples.</summary>
    private static IEnumerable<int[]> RandomBatches(int[] pool, LocalTraining o, Rng rng)
    {
        int b = Math.Min(o.BatchSize, pool.Length);
        for (int s = 0; s < o.Steps; s++)
        {
            var batch = new int[b];
            for (int i = 0; i < b; i++)
            {
                int j = i + rng.NextInt(pool.Length - i);
                (pool[i], pool[j]) = (pool[j], pool[i]);
                batch[i] = pool[i];
            }
            yield return batch;
        }
    }

    /// <summary>
    /// w ← (w − lr·∇loss + lr·λF·a) / (1 + lr·λF): a gradient step on the loss and an implicit (proximal) step on the
    /// penalty, which stays stable however large λF is (an explicit step overshoots once lr·λF &gt; 2).
    /// </summary>
    private void Step(float lr, Penalty? penalty)
    {
        int offset = 0;
        foreach (var p in _parameters)
        {
            var w = p.Span;
            if (p.Grad is { } g)
            {
                TensorPrimitives.MultiplyAdd(g, -lr, w, w);
                if (penalty != null)
                    for (int i = 0; i < w.Length; i++)
                    {
                        float pull = lr * penalty.Strength * (penalty.Importance?[offset + i] ?? 1f);
                        w[i] = (w[i] + pull * penalty.Anchor[offset + i]) / (1 + pull);
                    }
            }
            offset += p.Numel;
        }
    }

    /// <summary>
    /// The diagonal empirical Fisher of <paramref name="weights"/> on the examples: the mean over examples of the
    /// squared gradient of each one's log-likelihood (one backward pass per example), normalised so its mean is 1
    /// (then the EWC strength λ does not depend on the model's size).
    /// </summary>
    public float[] Fisher(float[] weights, Dataset data, ReadOnlySpan<int> examples)
    {
        Load(weights);
        _model.Eval();
        var fisher = new double[ParameterCount];
        foreach (int e in examples)
        {
            var loss = Tensor.CrossEntropy(_model.Forward(data.Inputs([e])), [data.Labels[e]]);
            foreach (var p in _parameters) p.ZeroGrad();
            loss.Backward();
            int offset = 0;
            foreach (var p in _parameters)
            {
                if (p.Grad is { } g)
                    for (int i = 0; i < g.Length; i++) fisher[offset + i] += (double)g[i] * g[i];
                offset += p.Numel;
            }
        }
        double mean = fisher.Average();
        return fisher.Select(f => mean > 0 ? (float)(f / mean) : 0f).ToArray();
    }

    public float Accuracy(ReadOnlySpan<float> weights, Dataset data)
    {
        Load(weights);
        return Trainer.Accuracy(_model, data);
    }

    /// <summary>
    /// Test accuracy on the <paramref name="classes"/> a device holds and on the others (after a task sequence: what it
    /// remembers of the earlier tasks); nulls without such a set, or for a side with no test example.
    /// </summary>
    public (float? Held, float? Other) SplitAccuracy(float[] weights, Dataset test, IReadOnlySet<int>? classes)
    {
        float? On(bool held)
        {
            if (classes == null) return null;
            var part = test.WithLabels(c => classes.Contains(c) == held);
            return part.Count > 0 ? Accuracy(weights, part) : null;
        }
        return (On(true), On(false));
    }

    private void Load(ReadOnlySpan<float> weights)
    {
        if (weights.Length != ParameterCount) throw new ColdmindException($"A model of {weights.Length} parameters for an architecture of {ParameterCount}.");
        int offset = 0;
        foreach (var p in _parameters)
        {
            weights.Slice(offset, p.Numel).CopyTo(p.Span);
            offset += p.Numel;
        }
    }

    private void Store(Span<float> weights)
    {
        int offset = 0;
        foreach (var p in _parameters)
        {
            p.Span.CopyTo(weights.Slice(offset, p.Numel));
            offset += p.Numel;
        }
    }
}
