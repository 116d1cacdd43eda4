using System.Globalization;
using Coldmind.Data;
using Coldmind.Tensors;

namespace Coldmind.Swarm;

/// <summary>
/// How the coordinator combines client updates: <c>mean</c> (weighted by each client's examples, FedAvg),
/// <c>median</c> (coordinate-wise) or <c>trimmed:β</c> (coordinate-wise mean without the β largest and β smallest
/// fraction); each update is first clipped to norm <see cref="Clip"/> when that is positive, to twice the median
/// norm of the round's updates when it is <see cref="GossipOptions.AutoClip"/> (with three updates or more). A client's
/// weight in the mean is the example count it claims, at most <see cref="WeightCap"/> times the round's median claim
/// (when positive): a client claiming 10⁷ examples then weighs as much as a large honest one, not the whole round.
/// </summary>
public sealed record Aggregation(string Rule, float Trim = 0, float Clip = 0, float WeightCap = 0)
{
    /// <summary>A client weighs at most the round's median claim; twice it let a poisoned claim take digits FedAvg to 22 % (TrustTests).</summary>
    public const float DefaultWeightCap = 1;
    /// <summary>Auto clipping bounds each update to this many times the round's median update norm.</summary>
    public const float AutoClipFactor = 2;

    public static Aggregation Parse(string spec, float clip, float weightCap = 0)
    {
        if (!(clip >= 0 && float.IsFinite(clip) || clip == GossipOptions.AutoClip)) throw new ColdmindException($"--clip must be auto or a non-negative norm, got {clip}.");
        if (!(weightCap >= 0 && float.IsFinite(weightCap)) || weightCap is > 0 and < 1)
            throw new ColdmindException($"--weight-cap is 0 (none) or a factor of at least 1, got {weightCap}.");
        var rule = ParseRule(spec);
        return rule with { Clip = clip, WeightCap = weightCap };
    }

    private static Aggregation ParseRule(string spec)
    {
        string s = spec.Trim().ToLowerInvariant();
        if (s is "mean" or "median") return new(s);
        if (s.StartsWith("trimmed:", StringComparison.Ordinal)
            && float.TryParse(s.AsSpan(8), NumberStyles.Float, CultureInfo.InvariantCulture, out float b) && b is >= 0 and < 0.5f)
            return new("trimmed", b);
        throw new ColdmindException($"--aggregate takes mean, median or trimmed:β with 0 ≤ β < 0.5 (e.g. trimmed:0.2), got '{spec}'.");
    }

    public override string ToString() => (Rule == "trimmed" ? string.Create(CultureInfo.InvariantCulture, $"trimmed:{Trim:G3}") : Rule)
        + (Clip > 0 ? string.Create(CultureInfo.InvariantCulture, $", clip {Clip:G3}") : Clip == GossipOptions.AutoClip ? ", clip auto" : "")
        + (WeightCap > 0 && Rule == "mean" ? string.Create(CultureInfo.InvariantCulture, $", weights ≤ {WeightCap:G3}× the median") : "");

    /// <summary>Combines updates (each the same length) with their weights into one update.</summary>
    public float[] Combine(IReadOnlyList<(float[] Update, double Weight)> updates)
    {
        if (updates.Count == 0) throw new ArgumentException("No updates to combine.");
        int n = updates[0].Update.Length;
        float clip = Clip == GossipOptions.AutoClip ? AutoClipFactor * MedianOrZero(updates.Select(u => TensorPrimitives.Norm(u.Update)).ToArray()) : Clip;
        var clipped = updates.Select(u => clip > 0 ? Scaled(u.Update, GossipNode.ClipFactor(u.Update, clip)) : u.Update).ToArray();
        var result = new float[n];
        if (Rule == "mean")
        {
            var weights = Weights(updates.Select(u => u.Weight).ToArray());
            double total = weights.Sum();
            for (int k = 0; k < clipped.Length; k++)
                TensorPrimitives.MultiplyAdd(clipped[k], (float)(total > 0 ? weights[k] / total : 1.0 / updates.Count), result, result);
            return result;
        }
        int m = clipped.Length, cut = Rule == "trimmed" ? (int)Math.Floor(Trim * m) : 0;
        var column = new float[m];
        for (int i = 0; i < n; i++)
        {
            for (int k = 0; k < m; k++) column[k] = clipped[k][i];
            Array.Sort(column);
            if (Rule == "median") result[i] = m % 2 == 1 ? column[m / 2] : 0.5f * (column[m / 2 - 1] + column[m / 2]);
            else
            {
                float sum = 0;
                for (int k = cut; k < m - cut; k++) sum += column[k];
                result[i] = sum / (m - 2 * cut);
            }
        }
        return result;
    }

    /// <summary>The weights the mean gives the claimed example counts: each at most <see cref="WeightCap"/> × their median.</summary>
    public double[] Weights(double[] claimed)
    {
        if (WeightCap <= 0 || claimed.Length == 0) return claimed;
        var sorted = claimed.Order().ToArray();
        double median = sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : 0.5 * (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]);
        return claimed.Select(c => Math.Min(c, WeightCap * median)).ToArray();
    }

    /// <summary>The median of three or more norms; 0 (no clipping) for fewer, where a median says nothing.</summary>
    private static float MedianOrZero(float[] norms)
    {
        if (norms.Length < 3) return 0;
        Array.Sort(norms);
        return norms.Length % 2 == 1 ? norms[norms.Length / 2] : 0.5f * (norms[norms.Length / 2 - 1] + norms[norms.Length / 2]);
    }

    private static float[] Scaled(float[] v, float s)
    {
        if (s == 1f) return v;
        var r = new float[v.Length];
        TensorPrimitives.Multiply(v, s, r);
        return r;
    }
}

/// <summary>
/// The FedAvg / FedProx baseline (McMahan et al. 2017; Li et al. 2020): a coordinator sends the global model to a
/// sample of clients, each trains on its own data (FedProx adds (μ/2)‖w − w_global‖²) and returns its update
/// w − w_global; the coordinator adds the aggregate of the updates that arrived. Updates travel in the swarm's
/// codec with error feedback on the client; the global model travels whole in its own codec (<see cref="DefaultDownlink"/>).
/// </summary>
public sealed class FedAvgCoordinator(LocalLearner learner, Aggregation aggregation, string address = "coordinator")
{
    public float[] Global { get; private set; } = learner.Initial();
    public long Round { get; private set; }
    public Aggregation Aggregation { get; } = aggregation;
    /// <summary>Client-level DP (<see cref="Privacy.DpFedAvg"/>): when set it aggregates instead of <see cref="Aggregation"/>.</summary>
    public Privacy.DpFedAvg? Privacy { get; init; }

    /// <summary>
    /// The global model's codec unless one is chosen: f32, or int8 when updates are compressed. A client that was not
    /// sampled last round holds no earlier global model, so it cannot travel as a delta with error feedback; its
    /// rounding error does not reach the global model either, as a client returns its change from what it decoded.
    /// </summary>
    public static ExchangeCodec DefaultDownlink(ExchangeCodec exchange) => exchange.Lossy ? new ExchangeCodec(ExchangeCodec.Kind.Int8) : ExchangeCodec.Float32;

    /// <summary>The downlink <paramref name="spec"/> names (null: <see cref="DefaultDownlink"/>); the global model goes whole, so not top-k.</summary>
    public static ExchangeCodec Downlink(string? spec, ExchangeCodec exchange)
    {
        if (spec is null) return DefaultDownlink(exchange);
        var codec = ExchangeCodec.Parse(spec);
        return codec.Dense ? codec : throw new ColdmindException($"--downlink sends the whole global model; top-k ('{spec}') would drop most of it.");
    }

    /// <summary>The global model message of this round in <paramref name="downlink"/>, and the model the clients decode from it.</summary>
    public (byte[] Bytes, float[] Decoded) GlobalMessage(ExchangeCodec downlink)
    {
        var delta = new float[Global.Length];
        TensorPrimitives.Subtract(Global, learner.InitialWeights, delta);
        var bytes = SwarmMessage.Encode(SwarmMessage.Type.Global, learner.ModelId, address, 0, Round, [], downlink, delta);
        var decoded = SwarmMessage.Decode(bytes, learner.ModelId, Global.Length).DenseValues(); // once for all the round's clients
        TensorPrimitives.Add(decoded, learner.InitialWeights, decoded);
        return (bytes, decoded);
    }

    /// <summary>
    /// Applies the aggregate of this round's updates (validated messages for this round, with each client's example
    /// count) and starts the next round; a round with no update, or whose aggregate overflows, leaves the model as it was.
    /// </summary>
    public void Complete(IReadOnlyList<(SwarmMessage Update, double Examples)> updates)
    {
        var usable = updates.Where(u => u.Update.Kind == SwarmMessage.Type.Update && u.Update.Round == Round).ToList();
        if (usable.Count > 0)
        {
            var next = (float[])Global.Clone(); // a new array: clients may still hold the old one
            TensorPrimitives.Add(next, Privacy is { } dp ? dp.Aggregate(usable.Select(u => u.Update.DenseValues()).ToList(), next.Length)
                : Aggregation.Combine(usable.Select(u => (u.Update.DenseValues(), u.Examples)).ToList()), next);
            if (TensorPrimitives.IsFiniteAll<float>(next)) Global = next; // an aggregate that overflows is dropped, not broadcast
        }
        Round++;
    }

    /// <summary>
    /// A round under secure aggregation (<see cref="SecureAggregation.SecAggRound"/>): the coordinator never sees an
    /// update, only the sum. Each client scales its update by its capped weight (the claims travel in the clear) and
    /// by its fixed clip (<see cref="Aggregation.Clip"/> when positive; auto clipping needs each update's norm and is
    /// off), or under DP by its DP clip, and appends its weight; the mean is the sum over the summed weights, or the
    /// DP mechanism's noised mean. Returns what the masking cost.
    /// </summary>
    public SecureAggregation.SecAggCost CompleteSecurely(IReadOnlyList<(SwarmMessage Update, double Examples)> updates)
    {
        var usable = updates.Where(u => u.Update.Kind == SwarmMessage.Type.Update && u.Update.Round == Round).ToList();
        var cost = new SecureAggregation.SecAggCost(0, 0);
        if (usable.Count >= 2)
        {
            var weights = Privacy is null ? Aggregation.Weights(usable.Select(u => u.Examples).ToArray()) : usable.Select(_ => 1.0).ToArray();
            double largest = weights.Max(); // relative weights keep every value well inside the fixed point's range
            weights = weights.Select(w => largest > 0 ? w / largest : 1).ToArray();
            var inputs = usable.Select((u, k) =>
            {
                var v = u.Update.DenseValues();
                float scale = Privacy?.ClipFactor(v) ?? (float)weights[k] * (Aggregation.Clip > 0 ? GossipNode.ClipFactor(v, Aggregation.Clip) : 1f);
                var scaled = new float[v.Length + 1];
                TensorPrimitives.Multiply(v, scale, scaled.AsSpan(0, v.Length));
                scaled[^1] = (float)weights[k];
                return scaled;
            }).ToList();
            var sum = SecureAggregation.SecAggRound.Sum(inputs, out cost);
            var total = sum[^1];
            var aggregate = Privacy is { } dp ? dp.Noised(sum[..^1]) : sum[..^1].Select(v => total > 0 ? v / total : 0f).ToArray();
            var next = (float[])Global.Clone();
            TensorPrimitives.Add(next, aggregate, next);
            if (TensorPrimitives.IsFiniteAll<float>(next)) Global = next;
        }
        Round++;
        return cost;
    }

    /// <summary>Resumes from a checkpoint: the global model and the round it is at.</summary>
    public void Restore(float[] global, long round)
    {
        if (global.Length != Global.Length || round < 0) throw new ColdmindException($"A global model of {global.Length} values at round {round} for a model of {Global.Length}.");
        Global = global;
        Round = round;
    }

    /// <summary>
    /// A client's round: start from the decoded global model, train, and return the update message (its change,
    /// reversed and ×10 when <paramref name="poison"/>: a Byzantine client), whose age is the client's example count.
    /// A client with a <see cref="DeviceMemory"/> replays remembered examples (<paramref name="replay"/>) and adds its
    /// EWC pull (<paramref name="memory"/>) to FedProx's; a client with <paramref name="dp"/> trains by DP-SGD.
    /// </summary>
    public static byte[] ClientUpdate(float[] global, long round, string client, LocalLearner learner, Dataset data, ReadOnlySpan<int> examples,
        LocalTraining local, float proximal, ExchangeCodec codec, ErrorFeedback? feedback, Rng rng, bool poison = false,
        Penalty? memory = null, ReadOnlySpan<int> replay = default, Privacy.DeviceDp? dp = null)
    {
        var w = (float[])global.Clone();
        var prox = proximal > 0 ? new Penalty(global, proximal) : null;
        var penalty = prox is not null && memory is not null ? prox.With(memory) : prox ?? memory;
        if (examples.Length > 0 && dp != null) learner.TrainPrivately(w, data, examples, local, rng, dp, penalty);
        else if (examples.Length > 0) learner.Train(w, data, examples, local, rng, penalty, replay);
        var delta = new float[w.Length];
        TensorPrimitives.Subtract(w, global, delta);
        if (poison) TensorPrimitives.Multiply(delta, -10f, delta);
        var intended = feedback?.WithResidual(delta) ?? delta;
        var bytes = SwarmMessage.Encode(SwarmMessage.Type.Update, learner.ModelId, client, examples.Length, round, [], codec, intended);
        feedback?.Sent(intended, SwarmMessage.Decode(bytes, learner.ModelId, w.Length).DenseValues());
        return bytes;
    }
}
