using System.Diagnostics;
using Coldmind.Numerics;
using Coldmind.Data;
using Coldmind.Tensors;

namespace Coldmind.Swarm;

/// <summary>A simulated swarm: protocol, devices, links and churn. Times are seconds.</summary>
public sealed record SwarmOptions
{
    public int Nodes { get; init; } = 100;
    /// <summary>"gossip" or "fedavg" (FedProx when <see cref="Proximal"/> &gt; 0).</summary>
    public string Protocol { get; init; } = "gossip";
    public Partition Partition { get; init; } = Partition.Parse("iid");
    public Churn Churn { get; init; } = Churn.None;
    /// <summary>Gossip cycles (each node wakes once a period) or FedAvg rounds, of each task.</summary>
    public int Rounds { get; init; } = 50;
    /// <summary>Stop once this many bytes were sent in a task (0: no budget).</summary>
    public long MaxBytes { get; init; }
    /// <summary>
    /// A task sequence: the classes the devices hold, one set after another, each for <see cref="Rounds"/> (or
    /// <see cref="MaxBytes"/>); a node's data in a task is the part of its shard in those classes. Empty: every class, one task.
    /// </summary>
    public IReadOnlyList<int[]> Tasks { get; init; } = [];
    /// <summary>What every device keeps of earlier tasks: replayed examples and an EWC pull.</summary>
    public MemoryOptions Memory { get; init; } = new();
    public double Period { get; init; } = 10;
    public double Latency { get; init; } = 0.05;
    public double LossRate { get; init; }
    /// <summary>Each node's link, bits per second.</summary>
    public double Bandwidth { get; init; } = 1e6;
    public double SlowFraction { get; init; }
    /// <summary>How many times longer a slow node's period and computation are.</summary>
    public double SlowFactor { get; init; } = 5;
    /// <summary>Seconds a device takes for one local SGD step.</summary>
    public double StepSeconds { get; init; } = 0.02;
    public LocalTraining Local { get; init; } = new();
    public ExchangeCodec Codec { get; init; } = ExchangeCodec.Float32;
    /// <summary>FedAvg: the codec the global model travels in (null: <see cref="FedAvgCoordinator.DefaultDownlink"/>).</summary>
    public ExchangeCodec? Downlink { get; init; }
    public ExchangeCodec GlobalCodec => Downlink ?? FedAvgCoordinator.DefaultDownlink(Codec);
    public int ViewSize { get; init; } = 20;
    /// <summary>Gossip: the bound on a merge's step (0: none; <see cref="GossipOptions.AutoClip"/>: set by each node).</summary>
    public float Clip { get; init; }
    /// <summary>Gossip: <see cref="GossipOptions.AgeLead"/> (0: any age).</summary>
    public float AgeLead { get; init; }
    /// <summary>Gossip: the decay of the running average of received models a node answers with (0: the last one).</summary>
    public float AnswerAverage { get; init; } = GossipOptions.DefaultAverage;
    /// <summary>Gossip: the share of its own age a receiver counts in a merge (1: the age-weighted average).</summary>
    public float OwnAge { get; init; } = 1;
    /// <summary>Gossip: the size of each node's token account (0: none).</summary>
    public int Tokens { get; init; }
    /// <summary>Gossip: models walk, and a node that has heard none for this many periods starts one (0: every node sends its own).</summary>
    public int Walk { get; init; }
    /// <summary>Walks: the most models a node sends a period (0: as fast as it receives them).</summary>
    public double Pace { get; init; }
    public Aggregation Aggregation { get; init; } = new("mean");
    /// <summary>
    /// Differential privacy (null: none). FedAvg: client-level, at the coordinator (<see cref="Privacy.DpFedAvg"/>);
    /// gossip: example-level, each node training by DP-SGD with its own accountant (<see cref="Privacy.DeviceDp"/>).
    /// </summary>
    public Nn.Privacy.DpOptions? Dp { get; init; }
    /// <summary>FedAvg: the coordinator sees only the sum of a round's updates (<see cref="SecureAggregation.SecAggRound"/>).</summary>
    public bool SecureAggregation { get; init; }
    /// <summary>FedAvg: fraction of the nodes sampled each round.</summary>
    public double ClientFraction { get; init; } = 0.1;
    /// <summary>FedAvg: a round ends after this many periods even if clients have not answered.</summary>
    public double RoundTimeoutPeriods { get; init; } = 3;
    /// <summary>FedProx's μ; 0 is FedAvg.</summary>
    public float Proximal { get; init; }
    /// <summary>Fraction of nodes that send poisoned models (reversed and ×10).</summary>
    public double Byzantine { get; init; }
    public IReadOnlyList<int> Hidden { get; init; } = [32];
    public ulong Seed { get; init; }
    /// <summary>Accuracy is measured on a seeded sample of this many nodes…</summary>
    public int EvalNodes { get; init; } = 100;
    /// <summary>…on this many test examples during the run (the whole test set at the end).</summary>
    public int EvalExamples { get; init; } = 1000;
    public int EvalPoints { get; init; } = 20;

    public void Validate()
    {
        if (Nodes < 2) throw new ColdmindException($"--nodes must be at least 2, got {Nodes}.");
        if (Protocol is not ("gossip" or "fedavg")) throw new ColdmindException($"--protocol takes gossip or fedavg, got '{Protocol}'.");
        if (Rounds < 1) throw new ColdmindException($"--rounds must be at least 1, got {Rounds}.");
        if (MaxBytes < 0) throw new ColdmindException($"--max-bytes must not be negative, got {MaxBytes}.");
        if (!(Period > 0) || !(Bandwidth > 0) || !(Latency >= 0) || !(StepSeconds >= 0) || !(SlowFactor >= 1) || !(RoundTimeoutPeriods > 0))
            throw new ColdmindException("--period, --bandwidth and the round timeout must be positive, --latency and the step time non-negative, --slow-factor at least 1.");
        if (LossRate is < 0 or >= 1) throw new ColdmindException($"--loss is a probability in [0, 1), got {LossRate}.");
        if (SlowFraction is < 0 or > 1 || Byzantine is < 0 or >= 0.5) throw new ColdmindException($"--slow must be in [0, 1] and --byzantine in [0, 0.5), got {SlowFraction} and {Byzantine}.");
        if (ClientFraction is <= 0 or > 1) throw new ColdmindException($"--clients must be a fraction in (0, 1], got {ClientFraction}.");
        if (Proximal < 0) throw new ColdmindException("--prox must not be negative.");
        if (EvalNodes < 1 || EvalExamples < 1 || EvalPoints < 1) throw new ColdmindException("The evaluation sample must be positive.");
        if (Tasks.Any(t => t.Length == 0)) throw new ColdmindException("Every --task must name at least one class.");
        if (Memory.Enabled && Tasks.Count < 2) throw new ColdmindException("--replay and --ewc guard what earlier tasks taught; give a task sequence (--task twice or more).");
        Memory.Validate();
        Gossip.Validate();
        Dp?.Validate();
        if (SecureAggregation && (Protocol != "fedavg" || Codec.Lossy || Aggregation.Rule != "mean"))
            throw new ColdmindException("--secure-aggregation sums FedAvg updates: it needs --protocol fedavg, --compress f32 and --aggregate mean (a median needs every update).");
        if (Dp != null && (Memory.Enabled || Tasks.Count > 0))
            throw new ColdmindException("--dp with a task sequence, --replay or --ewc is not built: what a device remembers would need its own accounting.");
    }

    public GossipOptions Gossip => new(Local, Codec, ViewSize, Clip, AnswerAverage, Tokens, Walk, Pace, OwnAge, AgeLead);
}

/// <summary>Mean, 10th and 90th percentile of the sampled nodes' test accuracy at a moment of the run, and ε spent by then under DP.</summary>
public sealed record SwarmPoint(double Seconds, long Bytes, long Round, float Mean, float P10, float P90, float OnlineFraction, double? Epsilon = null);

/// <summary>
/// The outcome of a run. <paramref name="TaskAccuracy"/>[i][j] is the sampled nodes' mean accuracy on task j's test
/// classes once task i is done (empty without a task sequence); what row i lost below row j on task j is forgotten.
/// </summary>
public sealed record SwarmResult(
    SwarmOptions Options, string Data, int ParameterCount, IReadOnlyList<SwarmPoint> Curve,
    float FinalMeanAccuracy, float FinalP10, float FinalP90, float[] FinalNodeAccuracies, IReadOnlyList<float[]> TaskAccuracy,
    long BytesSent, long Messages, long MessagesLost, long MessagesRejected, long ConnectionsRefused, long MessagesForwarded, long WalksStarted, long WalksJoined, long RoundsDone, double SimulatedSeconds,
    double WallSeconds, long StateBytesPerNode, double ManagedBytesPerNode, double? Epsilon = null, long SecAggBytes = 0, double SecAggSeconds = 0);

/// <summary>
/// HTTP/1.1 framing around a message body, as the real processes send it on loopback (the requests of `coldmind node`
/// and the replies of `coldmind coordinator`, counted by a proxy): the request line, Host (15 characters here),
/// X-Coldmind-Auth and Content-Length, and the reply's status line and Date (a model reply adds its length or
/// chunking and its signature). The simulator counts it with every message.
/// </summary>
public static class HttpFraming
{
    /// <summary>POST /v1/gossip (179 bytes of header) and its 204 (64).</summary>
    public const int Gossip = 243;
    /// <summary>POST /v1/fedavg/checkin (184 bytes of header and a 9-byte client name) and its 200 with the signed global model (231 and 13 of chunking).</summary>
    public const int CheckIn = 437;
    /// <summary>POST /v1/fedavg/update (186) and its 204 (64).</summary>
    public const int Update = 250;
}

/// <summary>
/// A deterministic discrete-event simulation of a swarm on one machine: every node's model, data shard, peer view,
/// link and online sessions, and every message encoded and decoded as it would travel (so bytes are real). Events
/// are processed in time order (ties in the order scheduled) on one thread; the same seed gives the same run.
/// </summary>
public sealed class SwarmSimulator
{
    private enum EventKind { Wake, Deliver, Pass, Toggle, RoundStart, Reply, RoundEnd, Evaluate }

    private readonly record struct Event(EventKind Kind, int Node, byte[]? Message, long Tag);

    private readonly SwarmOptions _o;
    private readonly Dataset _train, _test, _testSample;
    private readonly LocalLearner _learner;
    /// <summary>FedAvg under DP: its mechanism and accountant (null otherwise).</summary>
    private Privacy.DpFedAvg? _privacy;
    /// <summary>Under secure aggregation: the bytes its key exchange, shares and unmasking added, and the crypto's wall time.</summary>
    private long _secAggBytes;
    private double _secAggSeconds;
    /// <summary>Gossip under DP: each node's DP-SGD accountant (null otherwise).</summary>
    private Privacy.DeviceDp[]? _deviceDp;
    /// <summary>ε spent so far: the coordinator's (FedAvg), the largest of the nodes' (gossip).</summary>
    private double? Epsilon => _privacy?.Epsilon ?? _deviceDp?.Max(d => d.Epsilon);
    private readonly int[][] _shards;
    /// <summary>Each task's test set, and each node's examples in each task ([task][node]).</summary>
    private readonly Dataset[] _taskTests;
    private readonly int[][][] _taskShards;
    /// <summary>What each node trains on in the current task (its memory's replay pool included), and its EWC pull.</summary>
    private readonly (Dataset Data, int[] Examples, int[] Replay)[] _local;
    private readonly Penalty?[] _penalty;
    private readonly DeviceMemory?[] _memory;
    private readonly List<float[]> _taskAccuracy = [];
    private Rng? _memoryRng;
    private int _task;
    private long _taskBytes;
    private readonly bool[] _online, _slow, _byzantine;
    private readonly int[] _session;
    private readonly IEnumerator<double>[] _toggles;
    private readonly int[] _evalNodes;
    private readonly PriorityQueue<Event, (double, long)> _queue = new();
    private readonly Rng _rng;
    private long _sequence, _bytes, _messages, _lost, _rejected, _refused, _forwarded;
    private double _now;

    public SwarmSimulator(SwarmOptions options, Dataset train, Dataset test)
    {
        options.Validate();
        _o = options;
        _train = train;
        _test = test;
        _rng = new Rng(options.Seed ^ 0x5_3A_12_AA);
        _learner = LocalLearner.For(train, options.Hidden, options.Seed);
        _shards = options.Partition.Split(train, options.Nodes, _rng.Fork());
        int n = options.Nodes;
        foreach (var task in options.Tasks)
            if (task.Any(c => c < 0 || c >= train.Classes)) throw new ColdmindException($"A --task names class {task.First(c => c < 0 || c >= train.Classes)}; {train.Name} has classes 0 to {train.Classes - 1}.");
        _taskShards = options.Tasks.Count == 0 ? [_shards] : options.Tasks.Select(t => _shards.Select(s => s.Where(e => t.Contains(train.Labels[e])).ToArray()).ToArray()).ToArray();
        _taskTests = options.Tasks.Select(t => test.WithLabels(t.Contains)).ToArray();
        _local = new (Dataset, int[], int[])[n];
        _penalty = new Penalty?[n];
        _memory = new DeviceMemory?[n];
        if (_taskTests.Any(t => t.Count == 0)) throw new ColdmindException("A --task has no example in the test set.");
        _online = new bool[n];
        _session = new int[n];
        _toggles = new IEnumerator<double>[n];
        _slow = new bool[n];
        _byzantine = new bool[n];
        var roles = _rng.Fork();
        for (int i = 0; i < n; i++) _slow[i] = roles.NextDouble() < options.SlowFraction;
        var order = Enumerable.Range(0, n).ToArray();
        roles.Shuffle(order.AsSpan());
        foreach (int i in order.Take((int)Math.Round(options.Byzantine * n))) _byzantine[i] = true;
        _evalNodes = order.Reverse().Where(i => !_byzantine[i]).Take(options.EvalNodes).Order().ToArray();
        var testOrder = Enumerable.Range(0, test.Count).ToArray();
        _rng.Fork().Shuffle(testOrder.AsSpan());
        _testSample = test.Subset(testOrder[..Math.Min(options.EvalExamples, test.Count)]);
    }

    public SwarmResult Run(string dataName, IProgress<StageProgress>? progress = null)
    {
        var wall = Stopwatch.StartNew();
        long managedBefore = GC.GetTotalMemory(true);
        var churnRng = _rng.Fork();
        for (int i = 0; i < _o.Nodes; i++)
        {
            var (on, toggles) = _o.Churn.Schedule(i, churnRng);
            _online[i] = on;
            _toggles[i] = toggles.GetEnumerator();
            NextToggle(i);
        }
        var curve = new List<SwarmPoint>();
        int evalEvery = Math.Max(1, _o.Rounds * _taskShards.Length / _o.EvalPoints);
        float[][] models;
        long rounds, walks = 0, joined = 0;
        long stateBytes;
        if (_o.Protocol == "gossip")
        {
            var (nodes, done) = RunGossip(curve, evalEvery, progress);
            models = nodes.Select(x => x.Answer).ToArray();
            rounds = done;
            walks = nodes.Sum(x => x.WalksStarted);
            joined = nodes.Sum(x => x.WalksJoined);
            stateBytes = (long)_learner.ParameterCount * 4 * (GossipNode.KeepsResidual(_o.Codec) ? 3 : 2) + _o.ViewSize * 24 + 24; // the working model, the one it answers with, and its messages' residual
        }
        else
        {
            (models, rounds) = RunFedAvg(curve, evalEvery, progress);
            // a client holds the last global model it received; the coordinator's state is not a node's
            stateBytes = (long)_learner.ParameterCount * 4 * (_o.Codec.Lossy ? 2 : 1);
        }
        stateBytes += _memory.Sum(m => m is null ? 0 : (m.Count * (_train.FeatureCount + 2L) + (m.Penalty is null ? 0 : 2L * _learner.ParameterCount)) * 4) / _o.Nodes;
        double managedPerNode = Math.Max(0, GC.GetTotalMemory(false) - managedBefore) / (double)_o.Nodes;
        var final = Accuracies(models, _test);
        var (mean, p10, p90) = Summary(final);
        return new SwarmResult(_o, dataName, _learner.ParameterCount, curve, mean, p10, p90, final, _taskAccuracy, _bytes, _messages, _lost, _rejected, _refused, _forwarded, walks, joined, rounds, _now,
            wall.Elapsed.TotalSeconds, stateBytes + _shards.Sum(s => (long)s.Length) * 4 / _o.Nodes, managedPerNode, Epsilon, _secAggBytes, _secAggSeconds);
    }

    private (GossipNode[] Nodes, long Cycles) RunGossip(List<SwarmPoint> curve, int evalEvery, IProgress<StageProgress>? progress)
    {
        int n = _o.Nodes;
        var options = _o.Gossip;
        var nodes = new GossipNode[n];
        _deviceDp = _o.Dp is { } dp ? Enumerable.Range(0, n).Select(i => new Privacy.DeviceDp(dp, _shards[i].Length)).ToArray() : null;
        var bootstrap = _rng.Fork();
        for (int i = 0; i < n; i++)
        {
            nodes[i] = new GossipNode(Name(i), _learner.Initial(), 0, _o.ViewSize);
            var known = new List<PeerDescriptor>();
            for (int k = 0; k < Math.Min(_o.ViewSize, n - 1); k++)
            {
                int j = bootstrap.NextInt(n - 1);
                known.Add(new PeerDescriptor(Name(j >= i ? j + 1 : j), 0));
            }
            nodes[i].View.Merge(known);
            Schedule(bootstrap.NextDouble() * _o.Period, new Event(EventKind.Wake, i, null, 0));
        }
        var train = _rng.Fork();
        float[][] Answers() => nodes.Select(x => x.Answer).ToArray();
        BeginTask(0, Answers());
        double start = 0, end = _o.Rounds * _o.Period;
        long cyclesBefore = 0; // in the tasks done
        void ScheduleEvaluations()
        {
            for (int c = evalEvery; c <= _o.Rounds; c += evalEvery) Schedule(start + c * _o.Period, new Event(EventKind.Evaluate, _task, null, cyclesBefore + c));
        }
        ScheduleEvaluations();
        Evaluate(curve, Answers(), 0);
        while (_queue.TryDequeue(out var e, out var key))
        {
            _now = key.Item1;
            if (_now > end || OverBudget())
            {
                EndTask(Answers());
                if (_task + 1 == _taskShards.Length) break;
                double switched = Math.Min(_now, end);
                cyclesBefore += Math.Min(_o.Rounds, (long)Math.Floor((switched - start) / _o.Period));
                (start, end) = (switched, switched + _o.Rounds * _o.Period);
                BeginTask(_task + 1, Answers());
                ScheduleEvaluations();
            }
            switch (e.Kind)
            {
                case EventKind.Toggle:
                    Toggle(e.Node);
                    break;
                case EventKind.Wake:
                    Schedule(_now + _o.Period * (_slow[e.Node] ? _o.SlowFactor : 1), e);
                    if (_online[e.Node] && nodes[e.Node].View.Peers.Count > 0) Gossip(e.Node, wake: true);
                    break;
                case EventKind.Deliver:
                    if (!_online[e.Node]) { _lost++; break; }
                    SwarmMessage m;
                    try { m = SwarmMessage.Decode(e.Message, _learner.ModelId, _learner.ParameterCount); }
                    catch (SwarmMessageException) { _rejected++; break; }
                    var (data, examples, replay) = _local[e.Node];
                    if (!nodes[e.Node].Receive(m, _learner, data, examples, options, train, replay, _penalty[e.Node], _deviceDp?[e.Node])) break;
                    // the model goes on once the receiver's local steps are done, and its pace lets it
                    double ready = _now + (examples.Length > 0 ? _o.Local.Steps * _o.StepSeconds * (_slow[e.Node] ? _o.SlowFactor : 1) : 0);
                    if (nodes[e.Node].PassAt(options, train, (long)Math.Ceiling(ready * 1000), _o.Period * 1000) is { } at)
                        Schedule(at / 1000.0, new Event(EventKind.Pass, e.Node, null, _session[e.Node]));
                    break;
                case EventKind.Pass:
                    if (!_online[e.Node] || e.Tag != _session[e.Node]) nodes[e.Node].Abandon(); // it went offline meanwhile: the walk is lost
                    else if (Gossip(e.Node, wake: false)) _forwarded++;
                    break;
                case EventKind.Evaluate:
                    if (e.Node != _task) break; // scheduled for a task that ended early, at its byte budget
                    Evaluate(curve, Answers(), e.Tag);
                    progress?.Report(new StageProgress("gossip", (long)e.Tag, (long)_o.Rounds * _taskShards.Length));
                    break;
            }
        }
        long cycles = cyclesBefore + (long)Math.Min(_o.Rounds, Math.Floor((_now - start) / _o.Period));
        if (curve[^1].Round != cycles || curve[^1].Bytes != _bytes) Evaluate(curve, Answers(), cycles);
        return (nodes, cycles);

        // whether a message went out: what the sender sends at its wake, or the model it passes on
        bool Gossip(int sender, bool wake)
        {
            var node = nodes[sender];
            byte[]? message;
            long now = (long)(_now * 1000);
            try { message = wake ? node.Wake(_learner, options, now, _byzantine[sender]) : node.Pass(_learner, options, now, _byzantine[sender]); }
            catch (SwarmMessageException) { _rejected++; return false; } // a diverged model is not sent
            if (message == null) return false;
            // as over TCP, an offline peer refuses the connection before the message is sent: the sender drops
            // it from its view and tries another, as `coldmind node` does
            for (int attempt = 0; attempt < GossipNode.SendAttempts && node.View.Pick(train) is { } peer; attempt++)
            {
                if (_online[NodeIndex(peer)]) { Send(message, NodeIndex(peer), train); return true; }
                node.View.Remove(peer);
                _refused++;
            }
            return false;
        }
    }

    private (float[][] Models, long Rounds) RunFedAvg(List<SwarmPoint> curve, int evalEvery, IProgress<StageProgress>? progress)
    {
        int n = _o.Nodes;
        int perRound = Math.Max(1, (int)Math.Round(_o.ClientFraction * n));
        var coordinator = new FedAvgCoordinator(_learner, _o.Aggregation) { Privacy = _o.Dp is { } dp ? new Privacy.DpFedAvg(dp, perRound, n) : null };
        _privacy = coordinator.Privacy;
        var held = Enumerable.Repeat(coordinator.Global, n).ToArray(); // each client's last received global model
        var feedback = new ErrorFeedback?[n];
        var replies = new List<(SwarmMessage, double)>();
        var train = _rng.Fork();
        BeginTask(0, held);
        long taskRound = 0; // the round the task began at
        Evaluate(curve, held, 0);
        Schedule(0, new Event(EventKind.RoundStart, 0, null, 0));
        while (_queue.TryDequeue(out var e, out var key))
        {
            _now = key.Item1;
            if (coordinator.Round - taskRound >= _o.Rounds || OverBudget() || coordinator.Privacy?.Exhausted == true)
            {
                EndTask(held);
                if (_task + 1 == _taskShards.Length) break;
                taskRound = coordinator.Round;
                BeginTask(_task + 1, held); // each client anchors its memory at the last global model it received
            }
            switch (e.Kind)
            {
                case EventKind.Toggle:
                    Toggle(e.Node);
                    break;
                case EventKind.RoundStart:
                {
                    replies.Clear();
                    var (down, global) = coordinator.GlobalMessage(_o.GlobalCodec);
                    var candidates = Enumerable.Range(0, n).Where(i => _online[i]).ToArray(); // the coordinator knows who checked in
                    train.Shuffle(candidates.AsSpan());
                    double last = _now;
                    foreach (int c in candidates.Take(perRound))
                    {
                        _bytes += down.Length + HttpFraming.CheckIn;
                        _messages++;
                        if (train.NextDouble() < _o.LossRate) { _lost++; continue; }
                        held[c] = global;
                        if (_o.Codec.Lossy) feedback[c] ??= new ErrorFeedback(_learner.ParameterCount);
                        byte[] up;
                        var (data, examples, replay) = _local[c];
                        try { up = FedAvgCoordinator.ClientUpdate(global, coordinator.Round, Name(c), _learner, data, examples, _o.Local, _o.Proximal, _o.Codec, feedback[c], train, _byzantine[c], _penalty[c], replay); }
                        catch (SwarmMessageException) { _rejected++; continue; } // a diverged update is not sent
                        double slow = _slow[c] ? _o.SlowFactor : 1;
                        double at = _now + Transfer(down.Length) + _o.Local.Steps * _o.StepSeconds * slow + Transfer(up.Length);
                        Schedule(at, new Event(EventKind.Reply, c, up, ((long)_session[c] << 32) | (uint)coordinator.Round));
                        last = Math.Max(last, at);
                    }
                    Schedule(Math.Min(last, _now + _o.RoundTimeoutPeriods * _o.Period), new Event(EventKind.RoundEnd, 0, null, coordinator.Round));
                    break;
                }
                case EventKind.Reply:
                {
                    // sent only if the client stayed online through its round (same session) and the round is still open
                    if (!_online[e.Node] || (e.Tag >> 32) != _session[e.Node] || (uint)e.Tag != coordinator.Round) break;
                    _bytes += e.Message!.Length + HttpFraming.Update;
                    _messages++;
                    if (train.NextDouble() < _o.LossRate) { _lost++; break; }
                    try
                    {
                        var update = SwarmMessage.Decode(e.Message, _learner.ModelId, _learner.ParameterCount);
                        replies.Add((update, update.Age)); // weighed by the examples it trained on, as `coldmind coordinator` weighs it
                    }
                    catch (SwarmMessageException) { _rejected++; }
                    break;
                }
                case EventKind.RoundEnd:
                    if (e.Tag != coordinator.Round) break;
                    if (_o.SecureAggregation)
                    {
                        var cost = coordinator.CompleteSecurely(replies);
                        _bytes += cost.ExtraBytes;
                        _secAggBytes += cost.ExtraBytes;
                        _secAggSeconds += cost.Seconds;
                    }
                    else coordinator.Complete(replies);
                    if (coordinator.Round % evalEvery == 0)
                    {
                        Evaluate(curve, held, coordinator.Round);
                        progress?.Report(new StageProgress("fedavg", coordinator.Round, (long)_o.Rounds * _taskShards.Length));
                    }
                    Schedule(_now, new Event(EventKind.RoundStart, 0, null, 0));
                    break;
            }
        }
        if (curve[^1].Round != coordinator.Round || curve[^1].Bytes != _bytes) Evaluate(curve, held, coordinator.Round);
        return (held, coordinator.Round);
    }

    /// <summary>
    /// Hands every node its data of <paramref name="task"/>. A node with a memory begins a generation of it, its EWC
    /// anchor the model in <paramref name="models"/> it answers with (gossip) or last received (FedAvg).
    /// </summary>
    private void BeginTask(int task, float[][] models)
    {
        _task = task;
        _taskBytes = _bytes;
        for (int i = 0; i < _o.Nodes; i++)
        {
            var examples = _taskShards[task][i];
            if (!_o.Memory.Enabled) { _local[i] = (_train, examples, []); continue; }
            _memoryRng ??= _rng.Fork();
            var memory = _memory[i] ??= new DeviceMemory(_o.Memory, _train.FeatureCount);
            memory.Begin(_train, examples, _learner, models[i], _memoryRng);
            _local[i] = memory.Local(_train, examples);
            _penalty[i] = memory.Penalty;
        }
    }

    /// <summary>Records the sampled nodes' mean accuracy on each task's test classes (with a task sequence).</summary>
    private void EndTask(float[][] models)
    {
        if (_o.Tasks.Count > 0) _taskAccuracy.Add(_taskTests.Select(t => Accuracies(models, t).Average()).ToArray());
    }

    private void Toggle(int node)
    {
        _online[node] = !_online[node];
        _session[node]++;
        NextToggle(node);
    }

    /// <summary>Schedules the node's next online/offline switch (sessions are drawn lazily, one at a time).</summary>
    private void NextToggle(int node)
    {
        if (_toggles[node].MoveNext()) Schedule(_toggles[node].Current, new Event(EventKind.Toggle, node, null, 0));
    }

    private void Send(byte[] message, int to, Rng rng)
    {
        _bytes += message.Length + HttpFraming.Gossip;
        _messages++;
        if (rng.NextDouble() < _o.LossRate) { _lost++; return; }
        Schedule(_now + Transfer(message.Length), new Event(EventKind.Deliver, to, message, 0));
    }

    private double Transfer(int bytes) => _o.Latency + bytes * 8.0 / _o.Bandwidth;

    private bool OverBudget() => _o.MaxBytes > 0 && _bytes - _taskBytes >= _o.MaxBytes;

    private void Schedule(double time, Event e) => _queue.Enqueue(e, (time, _sequence++));

    private void Evaluate(List<SwarmPoint> curve, float[][] models, long round)
    {
        var (mean, p10, p90) = Summary(Accuracies(models, _testSample));
        curve.Add(new SwarmPoint(_now, _bytes, round, mean, p10, p90, (float)_online.Count(x => x) / _online.Length, Epsilon));
    }

    /// <summary>Test accuracy of each sampled node's model (a model several nodes share is evaluated once).</summary>
    private float[] Accuracies(float[][] models, Dataset test)
    {
        var cache = new Dictionary<float[], float>(ReferenceEqualityComparer.Instance);
        return _evalNodes.Select(i => cache.TryGetValue(models[i], out float a) ? a : cache[models[i]] = _learner.Accuracy(models[i], test)).ToArray();
    }

    private static (float Mean, float P10, float P90) Summary(float[] accuracies)
    {
        var sorted = accuracies.Order().ToArray();
        float Quantile(double q) => sorted[(int)Math.Round(q * (sorted.Length - 1))];
        return (sorted.Average(), Quantile(0.1), Quantile(0.9));
    }

    private static string Name(int i) => "n" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static int NodeIndex(string name) => int.Parse(name.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture);
}
