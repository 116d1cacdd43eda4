using Coldmind.Data;
using Coldmind.Tensors;

namespace Coldmind.Swarm;

/// <summary>
/// Gossip settings every node of a swarm shares. <paramref name="Average"/> is the decay of the running average of
/// received models a node answers with (0: the last one); <paramref name="Tokens"/> the size of a node's token
/// account (0: none, a node sends once every period); <paramref name="Walk"/>, when positive, makes models walk
/// (see <see cref="GossipNode.Wakes"/>): a node that has heard no model for that many periods starts one;
/// <paramref name="Pace"/>, when positive, bounds walks to that many models a node sends a period (see <see cref="GossipNode.PassAt"/>);
/// <paramref name="OwnAge"/> is the share of its own age a receiver counts in a merge (see <see cref="GossipNode.Merge"/>).
/// </summary>
/// <paramref name="Clip"/> bounds the step a merge takes towards a received model (0: none; <see cref="AutoClip"/>:
/// <see cref="ClipHistory"/>), <paramref name="AgeLead"/> how far a received age may exceed the receiver's (0: no bound;
/// see <see cref="GossipNode.CountedAge"/>).
public sealed record GossipOptions(LocalTraining Local, ExchangeCodec Codec, int ViewSize = 20, float Clip = 0, float Average = GossipOptions.DefaultAverage,
    int Tokens = 0, int Walk = 0, double Pace = 0, float OwnAge = 1, float AgeLead = 0)
{
    public const float DefaultAverage = 0.97f, AutoClip = -1, DefaultAgeLead = 1;

    /// <summary>--clip: auto (<see cref="AutoClip"/>), 0 (none) or a norm.</summary>
    public static float ParseClip(string spec) =>
        spec.Trim().Equals("auto", StringComparison.OrdinalIgnoreCase) ? AutoClip
        : float.TryParse(spec, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out float c) && c >= 0 && float.IsFinite(c) ? c
        : throw new ColdmindException($"--clip takes auto, 0 (none) or a non-negative norm, got '{spec}'.");
    public const int MaxTokens = 1000, MaxWalk = 1000, MaxPace = 1000;

    public void Validate()
    {
        if (!(Average >= 0 && Average < 1)) throw new ColdmindException($"--answer-average is a decay in [0, 1), got {Average}.");
        if (Tokens is < 0 or > MaxTokens) throw new ColdmindException($"--tokens is an account of 0 to {MaxTokens} messages, got {Tokens}.");
        if (Walk is < 0 or > MaxWalk) throw new ColdmindException($"--walk is a number of quiet periods, 0 to {MaxWalk}, got {Walk}.");
        if (Walk > 0 && Tokens > 0) throw new ColdmindException("--walk and --tokens are two ways of pacing a node's messages; give one of them.");
        if (!(Pace >= 0 && Pace <= MaxPace)) throw new ColdmindException($"--pace is a number of models a period, 0 to {MaxPace}, got {Pace}.");
        if (Pace > 0 && Walk == 0) throw new ColdmindException("--pace paces walks; give --walk too.");
        if (!(OwnAge is > 0 and <= 1)) throw new ColdmindException($"--own-age is the share of its own age a receiver counts, in (0, 1], got {OwnAge}.");
        if (!(Clip >= 0 && float.IsFinite(Clip) || Clip == AutoClip)) throw new ColdmindException($"--clip must be auto or a non-negative number, got {Clip}.");
        if (!(AgeLead >= 0 && float.IsFinite(AgeLead))) throw new ColdmindException($"--age-lead must be a non-negative factor, got {AgeLead}.");
        Local.Validate();
    }
}

/// <summary>
/// One node of gossip learning (Ormándi, Hegedűs and Jelasity 2013), the same code in the simulator and behind
/// `coldmind node`. Periodically a node sends its model, with its age (examples trained on), to a peer from its
/// partial view; the receiver merges — the age-weighted average (a_r·w_r + a_s·w_s)/(a_r + a_s), over the values
/// that were sent — then takes local SGD steps on its own data. A model travels as its difference from the shared
/// initial weights, in the swarm's <see cref="ExchangeCodec"/>. With a lossy codec the node keeps
/// <see cref="Feedback"/>, what its earlier messages left out, so that later ones carry it:
/// <list type="bullet">
/// <item>int8 and ternary: the quantization residual. Each message codes the model plus the residual (sigma-delta
/// modulation of the model), so quantization error is not biased towards zero but cancels over the messages the
/// swarm averages.</item>
/// <item>top-k: each value's change since the node's peers last heard it. A message carries the current values
/// (a receiver merges them as the model's own) where that change is largest, and those changes are cleared; a
/// value left out keeps its change growing until it is sent.</item>
/// </list>
/// </summary>
public sealed class GossipNode
{
    public string Address { get; }
    public float[] Weights { get; private set; }
    /// <summary>
    /// The model this node answers with: a running average of the models it has received, each weighted by its age
    /// and by β for every message since, as the global model is a FedAvg client's. Each sender's local steps pulled
    /// its model towards its own skewed shard, and the receiver's working model carries its own pull; averaging what
    /// many senders sent cancels those pulls, as FedAvg's mean does, at no cost in bytes. Weighting by age keeps the
    /// barely trained models of the first cycles from lingering in it.
    /// </summary>
    public float[] Answer { get; private set; }
    public double Age { get; private set; }
    /// <summary>The weight of <see cref="Answer"/>: the sum of the received ages, each decayed by β a message since.</summary>
    public double AnswerWeight { get; private set; }
    public NewscastView View { get; }
    /// <summary>What this node's messages have left out so far (lossy codecs only; null until the first such message).</summary>
    public ErrorFeedback? Feedback { get; private set; }
    /// <summary>Messages this node has saved up under a token account (<see cref="GossipOptions.Tokens"/>).</summary>
    public int Tokens { get; private set; }
    /// <summary>Walks: the wakes since the node last received a model or started a walk.</summary>
    public int Quiet { get; private set; }
    /// <summary>Walks: how many this node started, after <see cref="GossipOptions.Walk"/> quiet wakes.</summary>
    public long WalksStarted { get; private set; }
    /// <summary>A received model waits to be passed on (<see cref="PassAt"/>); models received meanwhile merge into it.</summary>
    public bool Passing { get; private set; }
    /// <summary>Walks: how many models this node received while one waited to be passed on, so that two walks went on as one.</summary>
    public long WalksJoined { get; private set; }
    /// <summary>When the node last sent a model (milliseconds), for <see cref="GossipOptions.Pace"/>.</summary>
    private long _modelSentAt = long.MinValue;

    public GossipNode(string address, float[] weights, double age, int viewSize)
    {
        Address = address;
        Weights = weights;
        Answer = weights.ToArray();
        Age = age;
        View = new NewscastView(address, viewSize);
    }

    /// <summary>
    /// The model message for a peer, with the node's view unless <paramref name="withView"/> is false (a walk's);
    /// <paramref name="poison"/> makes it a Byzantine node's (its change from the initial weights, reversed and ×10).
    /// </summary>
    public byte[] Message(LocalLearner learner, ExchangeCodec codec, long now, bool poison = false, bool withView = true)
    {
        _modelSentAt = now;
        PeerDescriptor[] view = withView ? View.Outgoing(now) : [];
        var delta = new float[Weights.Length];
        TensorPrimitives.Subtract(Weights, learner.InitialWeights, delta);
        if (poison) TensorPrimitives.Multiply(delta, -10f, delta);
        if (!KeepsResidual(codec)) return SwarmMessage.Encode(SwarmMessage.Type.Gossip, learner.ModelId, Address, Age, 0, view, codec, delta);
        if (!codec.Dense)
        {
            Feedback ??= ErrorFeedback.Unsent(delta); // nothing heard yet: the whole change is news
            var sparse = SwarmMessage.Encode(SwarmMessage.Type.Gossip, learner.ModelId, Address, Age, 0, view, codec, delta, Feedback.Residual);
            Feedback.Carried(SwarmMessage.Decode(sparse, learner.ModelId, delta.Length).Indices!);
            return sparse;
        }
        Feedback ??= new ErrorFeedback(delta.Length);
        var intended = Feedback.WithResidual(delta);
        var bytes = SwarmMessage.Encode(SwarmMessage.Type.Gossip, learner.ModelId, Address, Age, 0, view, codec, intended);
        Feedback.Sent(intended, SwarmMessage.Decode(bytes, learner.ModelId, delta.Length).DenseValues());
        return bytes;
    }

    /// <summary>The model message as the swarm sends it: with the node's view, except in a walk.</summary>
    public byte[] Message(LocalLearner learner, GossipOptions o, long now, bool poison = false) =>
        Message(learner, o.Codec, now, poison, withView: o.Walk == 0);

    /// <summary>
    /// What the node sends at this period's wake (<see cref="Wakes"/>): its model, with walks its view alone when it
    /// starts no walk, or nothing.
    /// </summary>
    public byte[]? Wake(LocalLearner learner, GossipOptions o, long now, bool poison = false) =>
        Wakes(o) ? Message(learner, o, now, poison) : o.Walk > 0 ? ViewMessage(learner, now) : null;

    /// <summary>
    /// A message with no model, only the sender's view and itself, fresh: with walks, a node sends it at every wake
    /// at which it starts no walk, and walks carry no view. Peer sampling then runs at one exchange a node a period,
    /// as in plain gossip. Were views to ride on the walks, thousands of merges a period would keep in every view
    /// only the few nodes heard of last, and walks would circle among them while other nodes waited in vain.
    /// </summary>
    public byte[] ViewMessage(LocalLearner learner, long now) =>
        SwarmMessage.Encode(SwarmMessage.Type.View, learner.ModelId, Address, Age, 0, View.Outgoing(now), ExchangeCodec.Float32, []);

    /// <summary>
    /// Whether the node sends its model at this period's wake. Plain gossip: always.
    /// <para>With an account of A tokens (after Danner and Jelasity 2018), a wake earns a token while the account
    /// holds fewer than A, and sends only once it is full; the node spends its tokens instead on <see cref="Forwards"/>.
    /// Either way a node sends at most one message a period on average, so the account changes when bytes go out,
    /// not how many.</para>
    /// <para>With walks of W quiet periods, a node sends its model at a wake only when it has received none for W
    /// wakes: it starts a walk. Every model a node receives it merges, trains on and passes on
    /// (<see cref="Forwards"/>), so a model walks from node to node, and each hop adds depth to one of a few chains
    /// instead of one of a hundred. A walk lost with a message, or with a peer that left before it arrived, is
    /// replaced by the nodes it no longer visits; how many walk settles where few nodes wait W periods for one.
    /// Unpaced, a model moves on as fast as links and devices let it, so a swarm spends a byte budget sooner in
    /// time, and a node may send many models a period; <see cref="GossipOptions.Pace"/> bounds that
    /// (<see cref="PassAt"/>).</para>
    /// </summary>
    public bool Wakes(GossipOptions o)
    {
        if (o.Walk > 0)
        {
            if (++Quiet < o.Walk) return false;
            Quiet = 0;
            WalksStarted++;
            return true;
        }
        if (o.Tokens == 0 || Tokens >= o.Tokens) return true;
        Tokens++;
        return false;
    }

    /// <summary>
    /// Whether the node passes its model on after a merge and its local steps (<see cref="PassAt"/> says when).
    /// With walks, always (when it knows a peer). Under a token account, spending a token: with probability tokens/A, so a full account
    /// forwards every model it receives and an empty one none. A received model then travels on as soon as it has
    /// learnt from the receiver's data, instead of waiting up to a period while newer ones arrive; with churn, it
    /// moves on before its holder goes offline.
    /// </summary>
    public bool Forwards(GossipOptions o, Rng rng)
    {
        if (o.Walk > 0) return View.Peers.Count > 0;
        if (o.Tokens == 0 || Tokens == 0 || View.Peers.Count == 0 || rng.NextDouble() >= (double)Tokens / o.Tokens) return false;
        Tokens--;
        return true;
    }

    /// <summary>
    /// Called after a model was received (<see cref="Receive"/>): when, in milliseconds, the node passes it on, or
    /// null when it does not (<see cref="Forwards"/>) or already has one waiting, which now carries both. It is ready
    /// at <paramref name="ready"/>, once its local steps are done. Under a pace of R models a period, a node sends
    /// its next model no sooner than a period/R after its last, so its link carries at most R models a period
    /// however many walks come by: a walk waits its turn, and a walk that arrives while another waits joins it.
    /// Fewer walks then go on, and nodes they no longer reach start new ones after W quiet periods.
    /// </summary>
    public long? PassAt(GossipOptions o, Rng rng, long ready, double periodMs)
    {
        if (Passing)
        {
            if (o.Walk > 0) WalksJoined++;
            return null;
        }
        if (!Forwards(o, rng)) return null;
        Passing = true;
        return o.Pace > 0 && _modelSentAt != long.MinValue ? Math.Max(ready, _modelSentAt + (long)(periodMs / o.Pace)) : ready;
    }

    /// <summary>The model message that passes on the waiting model (<see cref="PassAt"/>).</summary>
    public byte[] Pass(LocalLearner learner, GossipOptions o, long now, bool poison = false)
    {
        Passing = false;
        return Message(learner, o, now, poison);
    }

    /// <summary>The waiting model will not be passed on (its node went offline): the next one received is passed on anew.</summary>
    public void Abandon() => Passing = false;

    /// <summary>Peers a node tries a period: one that cannot be reached leaves its view and the next is tried.</summary>
    public const int SendAttempts = 3;

    /// <summary>Whether messages in <paramref name="codec"/> carry error feedback: every lossy codec.</summary>
    public static bool KeepsResidual(ExchangeCodec codec) => codec.Lossy;

    /// <summary>
    /// Merges a validated gossip message, then trains on <paramref name="examples"/> (indices into <paramref name="data"/>),
    /// replaying examples of earlier data and held by the EWC <paramref name="penalty"/> when the node has a <see cref="DeviceMemory"/>,
    /// by DP-SGD when it has <paramref name="dp"/> (then its age grows by the steps its privacy budget allowed).
    /// A view message only updates the view. Returns whether the message held a model.
    /// </summary>
    public bool Receive(SwarmMessage m, LocalLearner learner, Dataset data, ReadOnlySpan<int> examples, GossipOptions o, Rng rng,
        ReadOnlySpan<int> replay = default, Penalty? penalty = null, Privacy.DeviceDp? dp = null)
    {
        if (m.Kind is not (SwarmMessage.Type.Gossip or SwarmMessage.Type.View)) throw new SwarmMessageException($"a {m.Kind} message sent to a gossip node");
        View.Merge(m.View);
        if (m.Kind == SwarmMessage.Type.View) return false;
        Quiet = 0;
        var received = Received(Weights, m, learner.InitialWeights, o.Clip == GossipOptions.AutoClip ? _steps.Bound() : o.Clip, out float step);
        _steps.Add(step);
        double age = CountedAge(m.Age, o);
        var before = o.Codec.Dense || Feedback is null ? null : Weights.ToArray(); // top-k: what changes is news for the node's peers
        Age = Merge(Weights, Age, received, age, o.OwnAge);
        AnswerWeight = o.Average * AnswerWeight + age;
        TensorPrimitives.Lerp(Answer, received, AnswerWeight > 0 ? (float)(age / AnswerWeight) : 1f, Answer);
        if (examples.Length > 0)
        {
            int steps = o.Local.Steps;
            if (dp != null) steps = learner.TrainPrivately(Weights, data, examples, o.Local, rng, dp, penalty);
            else learner.Train(Weights, data, examples, o.Local, rng, penalty, replay);
            Age += (double)steps * Math.Min(o.Local.BatchSize, examples.Length);
        }
        if (before != null) Feedback!.Changed(before, Weights);
        return true;
    }

    /// <summary>The norms of the latest steps towards received models, for <see cref="GossipOptions.AutoClip"/>.</summary>
    private readonly ClipHistory _steps = new();

    /// <summary>
    /// The age a merge counts for a message that claims <paramref name="claimed"/>: at most
    /// <see cref="GossipOptions.AgeLead"/> times the receiver's own (or one round of local steps, for a node that has
    /// learnt less). A message claiming 10¹⁴ would otherwise outweigh every model in the merge and hand its age on
    /// to every node downstream, freezing their merges; with a lead L above 1 a poisoner still multiplies the ages
    /// it reaches by L a message, so the default is 1: a message weighs at most as much as the receiver's model.
    /// </summary>
    public double CountedAge(double claimed, GossipOptions o) =>
        o.AgeLead > 0 ? Math.Min(claimed, o.AgeLead * Math.Max(Age, (double)o.Local.Steps * o.Local.BatchSize)) : claimed;

    /// <summary>Replaces the working model, the one the node answers with, its messages' residual, its tokens and its walk state (a restart from a checkpoint).</summary>
    public void Restore(float[] weights, float[] answer, float[]? residual, double age, double answerWeight, int tokens, int quiet = 0)
    {
        if (answer.Length != weights.Length || residual is not null && residual.Length != weights.Length)
            throw new ColdmindException($"Models of {answer.Length} and {residual?.Length} values beside working weights of {weights.Length}.");
        if (!(age >= 0) || !(answerWeight >= 0)) throw new ColdmindException($"A node cannot have age {age} or an answer of weight {answerWeight}.");
        if (tokens is < 0 or > GossipOptions.MaxTokens) throw new ColdmindException($"A node cannot hold {tokens} tokens.");
        if (quiet is < 0 or > GossipOptions.MaxWalk) throw new ColdmindException($"A node cannot have been quiet for {quiet} wakes.");
        Tokens = tokens;
        Quiet = quiet;
        Weights = weights;
        Answer = answer;
        Age = age;
        AnswerWeight = answerWeight;
        if (residual == null) Feedback = null;
        else
        {
            Feedback = new ErrorFeedback(residual.Length);
            residual.CopyTo(Feedback.Residual, 0);
        }
    }

    /// <summary>
    /// The sender's model as the owner of <paramref name="weights"/> receives it: the sender's values where the
    /// message carries them, the owner's elsewhere. The step from <paramref name="weights"/> is clipped to norm
    /// <paramref name="clip"/> (when positive), which bounds what one poisoned message can do to a merge or an answer.
    /// </summary>
    public static float[] Received(ReadOnlySpan<float> weights, SwarmMessage m, ReadOnlySpan<float> initial, float clip) =>
        Received(weights, m, initial, clip, out _);

    /// <summary><c>Received</c>, with the norm of the step before clipping.</summary>
    public static float[] Received(ReadOnlySpan<float> weights, SwarmMessage m, ReadOnlySpan<float> initial, float clip, out float norm)
    {
        var received = weights.ToArray();
        var step = Step(received, m, initial);
        norm = TensorPrimitives.Norm(step);
        TensorPrimitives.Multiply(step, ClipFactor(step, clip), step);
        for (int i = 0; i < step.Length; i++) received[m.Indices?[i] ?? i] += step[i];
        return received;
    }

    /// <summary>
    /// The age-weighted merge (a_r·w_r + a_s·w_s)/(a_r + a_s) of <paramref name="weights"/> (age <paramref name="age"/>)
    /// with the <c>Received</c> model, in place; returns the merged age, the older of the two. A receiver may
    /// weigh its model by only a share <paramref name="ownShare"/> of its age (<see cref="GossipOptions.OwnAge"/>):
    /// with walks, its model is what it learnt up to the last walk it passed on, older than the walk that arrives,
    /// and a walk that keeps only half of itself at every hop loses depth. That pays only when a message's rounding
    /// error is small: each hop's error stays in the walk in the same share.
    /// </summary>
    public static double Merge(float[] weights, double age, ReadOnlySpan<float> received, double receivedAge, float ownShare = 1)
    {
        double total = age * ownShare + receivedAge;
        TensorPrimitives.Lerp(weights, received, total > 0 ? (float)(receivedAge / total) : 0.5f, weights);
        return Math.Max(age, receivedAge);
    }

    /// <summary>The sender's values minus <paramref name="weights"/>, at the positions the message carries.</summary>
    private static float[] Step(ReadOnlySpan<float> weights, SwarmMessage m, ReadOnlySpan<float> initial)
    {
        var step = new float[m.Values.Length];
        for (int i = 0; i < step.Length; i++)
        {
            int at = m.Indices?[i] ?? i;
            step[i] = initial[at] + m.Values[i] - weights[at];
        }
        return step;
    }

    /// <summary>The factor that brings <paramref name="v"/> to norm at most <paramref name="clip"/> (1 when clip ≤ 0).</summary>
    public static float ClipFactor(ReadOnlySpan<float> v, float clip)
    {
        if (clip <= 0) return 1f;
        float norm = TensorPrimitives.Norm(v);
        return norm > clip ? clip / norm : 1f;
    }
}
