using Coldmind.Data;
using Coldmind.Tensors;

namespace Coldmind.Swarm;

/// <summary>
/// Gossip settings every node of a swarm shares. <paramref name="Average"/> is the decay of the running average of
/// merges a node answers with (0: its last merge).
/// </summary>
public sealed record GossipOptions(LocalTraining Local, ExchangeCodec Codec, int ViewSize = 20, float Clip = 0, float Average = GossipOptions.DefaultAverage)
{
    public const float DefaultAverage = 0.9f;

    public void Validate()
    {
        if (!(Average >= 0 && Average < 1)) throw new ColdmindException($"--answer-average is a decay in [0, 1), got {Average}.");
        if (!(Clip >= 0 && float.IsFinite(Clip))) throw new ColdmindException($"--clip must be a non-negative number, got {Clip}.");
        Local.Validate();
    }
}

/// <summary>
/// One node of gossip learning (Ormándi, Hegedűs and Jelasity 2013), the same code in the simulator and behind
/// `coldmind node`. Periodically a node sends its model, with its age (examples trained on), to a peer from its
/// partial view; the receiver merges — the age-weighted average (a_r·w_r + a_s·w_s)/(a_r + a_s), over the values
/// that were sent — then takes local SGD steps on its own data. A model travels as its difference from the shared
/// initial weights, in the swarm's <see cref="ExchangeCodec"/>. With a lossy codec that carries every value (int8,
/// ternary) the node keeps <see cref="Feedback"/>: each message carries what the node's earlier messages left out
/// (sigma-delta modulation of its model), so quantization error is not biased towards zero but cancels over the
/// messages the swarm averages. A top-k message merges only the values it carries, as the model's own: a residual
/// added to them would be merged as if it were the model, so top-k gossip runs without one.
/// </summary>
public sealed class GossipNode
{
    public string Address { get; }
    public float[] Weights { get; private set; }
    /// <summary>
    /// The model this node answers with: a running average of its merges, each taken before the local steps that
    /// follow it. Those steps pull the working model towards the node's own (skewed) shard; a merge is the swarm's
    /// consensus, as the global model is for a FedAvg client. One merge averages only two models, and the running
    /// average (the mean of the first 1/(1 − β) merges, then decaying by β a merge) spreads the answer over the many
    /// senders a node has heard from, at no cost in bytes.
    /// </summary>
    public float[] Merged { get; private set; }
    public double Age { get; private set; }
    /// <summary>Merges so far: the running average weighs the first ones equally.</summary>
    public long Merges { get; private set; }
    public NewscastView View { get; }
    /// <summary>What this node's messages have left out so far (dense lossy codecs only; null until the first such message).</summary>
    public ErrorFeedback? Feedback { get; private set; }

    public GossipNode(string address, float[] weights, double age, int viewSize)
    {
        Address = address;
        Weights = weights;
        Merged = weights.ToArray();
        Age = age;
        View = new NewscastView(address, viewSize);
    }

    /// <summary>The model message for a peer; <paramref name="poison"/> makes it a Byzantine node's (its change from the initial weights, reversed and ×10).</summary>
    public byte[] Message(LocalLearner learner, ExchangeCodec codec, long now, bool poison = false)
    {
        var delta = new float[Weights.Length];
        TensorPrimitives.Subtract(Weights, learner.InitialWeights, delta);
        if (poison) TensorPrimitives.Multiply(delta, -10f, delta);
        if (!KeepsResidual(codec)) return SwarmMessage.Encode(SwarmMessage.Type.Gossip, learner.ModelId, Address, Age, 0, View.Outgoing(now), codec, delta);
        Feedback ??= new ErrorFeedback(delta.Length);
        var intended = Feedback.WithResidual(delta);
        var bytes = SwarmMessage.Encode(SwarmMessage.Type.Gossip, learner.ModelId, Address, Age, 0, View.Outgoing(now), codec, intended);
        Feedback.Sent(intended, SwarmMessage.Decode(bytes, learner.ModelId, delta.Length).DenseValues());
        return bytes;
    }

    /// <summary>Whether messages in <paramref name="codec"/> carry error feedback: lossy codecs that send every value.</summary>
    public static bool KeepsResidual(ExchangeCodec codec) => codec.Lossy && codec.Dense;

    /// <summary>Merges a validated gossip message, then trains on <paramref name="examples"/> (indices into <paramref name="data"/>).</summary>
    public void Receive(SwarmMessage m, LocalLearner learner, Dataset data, ReadOnlySpan<int> examples, GossipOptions o, Rng rng)
    {
        if (m.Kind != SwarmMessage.Type.Gossip) throw new SwarmMessageException($"a {m.Kind} message sent to a gossip node");
        View.Merge(m.View);
        Age = Merge(Weights, Age, m, learner.InitialWeights, o.Clip);
        float keep = Math.Min(o.Average, Merges / (Merges + 1f));
        TensorPrimitives.Multiply(Merged, keep, Merged);
        TensorPrimitives.MultiplyAdd(Weights, 1 - keep, Merged, Merged);
        Merges++;
        if (examples.Length == 0) return;
        learner.Train(Weights, data, examples, o.Local, rng);
        Age += (double)o.Local.Steps * Math.Min(o.Local.BatchSize, examples.Length);
    }

    /// <summary>Replaces the working model, the one the node answers with and its messages' residual (a restart from a checkpoint).</summary>
    public void Restore(float[] weights, float[] merged, float[]? residual, double age, long merges)
    {
        if (merged.Length != weights.Length || residual is not null && residual.Length != weights.Length)
            throw new ColdmindException($"Models of {merged.Length} and {residual?.Length} values beside working weights of {weights.Length}.");
        if (!(age >= 0) || merges < 0) throw new ColdmindException($"A node cannot have age {age} or {merges} merges.");
        Weights = weights;
        Merged = merged;
        Age = age;
        Merges = merges;
        if (residual == null) Feedback = null;
        else
        {
            Feedback = new ErrorFeedback(residual.Length);
            residual.CopyTo(Feedback.Residual, 0);
        }
    }

    /// <summary>
    /// The age-weighted merge of <paramref name="weights"/> (age <paramref name="age"/>) with the message's model,
    /// in place, over the values the message carries; the step towards the sender is clipped to norm
    /// <paramref name="clip"/> (when positive), which bounds what one poisoned message can do. Returns the merged age.
    /// </summary>
    public static double Merge(float[] weights, double age, SwarmMessage m, ReadOnlySpan<float> initial, float clip)
    {
        double total = age + m.Age;
        float share = total > 0 ? (float)(m.Age / total) : 0.5f;
        int n = m.Indices?.Length ?? weights.Length;
        var step = new float[n];
        for (int i = 0; i < n; i++)
        {
            int at = m.Indices?[i] ?? i;
            step[i] = initial[at] + m.Values[i] - weights[at];
        }
        TensorPrimitives.Multiply(step, share * ClipFactor(step, clip), step);
        for (int i = 0; i < n; i++) weights[m.Indices?[i] ?? i] += step[i];
        return Math.Max(age, m.Age);
    }

    /// <summary>The factor that brings <paramref name="v"/> to norm at most <paramref name="clip"/> (1 when clip ≤ 0).</summary>
    public static float ClipFactor(ReadOnlySpan<float> v, float clip)
    {
        if (clip <= 0) return 1f;
        float norm = TensorPrimitives.Norm(v);
        return norm > clip ? clip / norm : 1f;
    }
}
