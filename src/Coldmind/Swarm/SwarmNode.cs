using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Coldmind.Data;
using Coldmind.Network;
using Coldmind.Tensors;

namespace Coldmind.Swarm;

/// <summary>
/// What one `coldmind node` runs: its data shard, model, peers, timing and memory against forgetting, and which
/// peers it learns from messages (<see cref="PeerPolicy"/>; null: every peer it hears of), and example-level DP
/// (<see cref="Privacy.DeviceDp"/>: DP-SGD and its own accountant; null: none).
/// </summary>
public sealed record NodeOptions(string Listen, IReadOnlyList<string> Peers, GossipOptions Gossip, TimeSpan Period, int Cycles,
    string? CheckpointPath, int MaxMessageBytes, TimeSpan Linger, MemoryOptions? Memory = null, PeerPolicy? PeersFrom = null, Nn.Privacy.DpOptions? Dp = null);

/// <summary>
/// How a node's run ended. With <c>--classes</c>, the answer's test accuracy is also split between the classes the
/// node holds and the others (after a task sequence: what it remembers of the earlier tasks).
/// </summary>
public sealed record NodeSummary(string Address, float TestAccuracy, double Age, int Cycles, long Received, long Rejected, long Sent, long Forwarded, long BytesSent, long SendFailures, bool Resumed,
    float? HeldClassesAccuracy = null, float? OtherClassesAccuracy = null, long WalksStarted = 0, long WalksJoined = 0, double? Epsilon = null);

/// <summary>
/// A gossip-learning node on a real network (`coldmind node`): the protocol of <see cref="GossipNode"/> over HTTP.
/// <code>POST /v1/gossip   body: a <see cref="SwarmMessage"/> (a model, or with walks only a view) → 204</code>
/// Every message carries the shared key's HMAC (<see cref="MessageAuth"/>); bodies over the bound get 413, messages
/// that fail validation (another model, wrong length, non-finite values, malformed fields) 400, unsigned or
/// wrongly signed ones 401; each rejection is logged. After every change the node checkpoints its model, age,
/// cycle, view and <see cref="DeviceMemory"/> atomically, so a node killed and restarted with the same checkpoint
/// resumes where it was. Restarted on other data (another fingerprint), it keeps its model, runs its cycles anew,
/// and with a memory guards what it learnt from the earlier data.
/// </summary>
public sealed class SwarmNode : IAsyncDisposable
{
    public const string GossipPath = "/v1/gossip";
    /// <summary>The checkpoint's key prefix: coldmind.swarm.*.</summary>
    private const string Kind = "swarm";

    private readonly WebApplication _app;
    private readonly GossipNode _node;
    private readonly LocalLearner _learner;
    private readonly Dataset _train;
    /// <summary>The node's examples in <see cref="_train"/>, and the remembered examples of earlier data it replays.</summary>
    private readonly int[] _shard, _replay;
    /// <summary>The EWC pull of the node's memory on its local steps, once it has moved on from its first data.</summary>
    private readonly Penalty? _penalty;
    /// <summary>What the device keeps of its earlier data; the checkpoint refers to its file (<see cref="DeviceMemory.Persist"/>).</summary>
    private readonly DeviceMemory? _memory;
    /// <summary>The fingerprint of the node's examples (<see cref="Dataset.Fingerprint"/>), kept in the checkpoint.</summary>
    private readonly ulong _dataId;
    private readonly NodeOptions _o;
    private readonly MessageAuth _auth;
    private readonly Action<string> _log;
    private readonly Lock _gate = new();
    private readonly Rng _rng;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(5) };
    /// <summary>
    /// When (Unix milliseconds) to pass on the model waiting after a merge (<see cref="GossipNode.PassAt"/>), off
    /// the request's path; it is encoded then, with whatever arrived meanwhile.
    /// </summary>
    private readonly Channel<long> _passes = Channel.CreateUnbounded<long>(new UnboundedChannelOptions { SingleReader = true });
    /// <summary>The node's DP-SGD accountant under --dp.</summary>
    private readonly Privacy.DeviceDp? _dp;
    private int _cycle;
    private long _received, _rejected, _sent, _forwarded, _bytesSent, _sendFailures;
    /// <summary>The counters above on the <c>Coldmind.Swarm</c> meter, for dotnet-counters and other listeners.</summary>
    private readonly System.Diagnostics.Metrics.Meter _meter = new("Coldmind.Swarm");

    public bool Resumed { get; }
    public string Address => _node.Address;

    private SwarmNode(WebApplication app, GossipNode node, LocalLearner learner, Dataset train, int[] shard, ulong dataId, DeviceMemory? memory, NodeOptions o,
        MessageAuth auth, Action<string> log, bool resumed, int cycle, ulong seed)
    {
        _app = app; _node = node; _learner = learner; _o = o; _auth = auth; _log = log;
        _penalty = memory?.Penalty;
        _memory = memory;
        _dataId = dataId;
        (_train, _shard, _replay) = memory?.Local(train, shard) ?? (train, shard, []);
        if (o.Dp is { } dp) _dp = new Privacy.DeviceDp(dp, shard.Length);
        Resumed = resumed;
        _cycle = cycle;
        _rng = new Rng(seed ^ (ulong)node.Address.GetHashCode(StringComparison.Ordinal) ^ (ulong)DateTime.UtcNow.Ticks);
        _meter.CreateObservableCounter("coldmind.swarm.received", () => Interlocked.Read(ref _received), "{message}");
        _meter.CreateObservableCounter("coldmind.swarm.rejected", () => Interlocked.Read(ref _rejected), "{message}");
        _meter.CreateObservableCounter("coldmind.swarm.sent", () => Interlocked.Read(ref _sent), "{message}");
        _meter.CreateObservableCounter("coldmind.swarm.forwarded", () => Interlocked.Read(ref _forwarded), "{message}");
        _meter.CreateObservableCounter("coldmind.swarm.bytes_sent", () => Interlocked.Read(ref _bytesSent), "By");
        _meter.CreateObservableCounter("coldmind.swarm.send_failures", () => Interlocked.Read(ref _sendFailures), "{message}");
    }

    public static async Task<SwarmNode> StartAsync(NodeOptions o, LocalLearner learner, Dataset train, int[] shard, MessageAuth auth, Action<string> log)
    {
        var app = HttpHost.Create(o.Listen, o.MaxMessageBytes);
        string address = o.Listen;
        var node = new GossipNode(address, learner.Initial(), 0, o.Gossip.ViewSize);
        int cycle = 0;
        bool resumed = false;
        var memoryOptions = o.Memory ?? new MemoryOptions();
        DeviceMemory? memory = null;
        bool newData = false;
        long dpSteps = 0;
        ulong dataId = train.Fingerprint(shard);
        if (o.CheckpointPath != null && File.Exists(o.CheckpointPath))
        {
            ulong data;
            (cycle, data, memory, dpSteps) = Restore(o.CheckpointPath, node, learner, memoryOptions, train);
            resumed = true;
            log(string.Create(CultureInfo.InvariantCulture, $"resumed from {o.CheckpointPath}: age {node.Age:F0}, cycle {cycle}, {node.View.Peers.Count} peers known"));
            newData = data != dataId;
            if (newData)
            {
                cycle = 0;
                log($"new data ({shard.Length} examples): its cycles start again{(memoryOptions.Enabled ? "" : "; without --replay or --ewc it may forget what it learnt before")}");
            }
        }
        memory = DeviceMemory.Start(memoryOptions, memory, newData, train, shard, learner, node.Answer, "the model it answered with", log);
        node.View.Merge(o.Peers.Where(p => p != address).Select(p => new PeerDescriptor(p, 0)));
        if (auth.Self != address) throw new ColdmindException($"The key file is node {auth.Self}'s; this node listens as {address}.");
        if (o.CheckpointPath != null) auth.PersistReplays(o.CheckpointPath);
        var server = new SwarmNode(app, node, learner, train, shard, dataId, memory, o, auth, log, resumed, cycle, learner.Seed);
        if (server._dp is { } privacy && resumed && privacy.Restore(dpSteps, o.Gossip.Local.BatchSize) is { } spent)
            log(string.Create(CultureInfo.InvariantCulture, $"DP: resumed at ε = {spent:F2} (δ = {privacy.Options.Delta:G2})"));
        else if (server._dp == null && dpSteps > 0) throw new ColdmindException($"The checkpoint '{o.CheckpointPath}' trained under --dp; resume it with --dp, or its ε is lost.");
        app.MapPost(GossipPath, server.Handle);
        try { await app.StartAsync(); }
        catch (IOException e) { throw new ColdmindException($"Cannot listen on {o.Listen}: {e.Message}"); }
        return server;
    }

    private async Task Handle(HttpContext ctx)
    {
        var body = await HttpHost.ReadBounded(ctx.Request, _o.MaxMessageBytes);
        if (body == null) { await Reject(ctx, StatusCodes.Status413PayloadTooLarge, $"message over {_o.MaxMessageBytes} bytes"); return; }
        if (!_auth.Verify(ctx.Request.Headers[MessageAuth.Header], "POST", GossipPath, body, out string sender, out string reason))
        { await Reject(ctx, StatusCodes.Status401Unauthorized, reason); return; }
        try
        {
            var m = SwarmMessage.Decode(body, _learner.ModelId, _learner.ParameterCount);
            if (m.Sender != sender) throw new SwarmMessageException($"a message from {m.Sender} signed by {sender}");
            lock (_gate)
            {
                m = m with { View = Learnable(m.View) };
                if (_node.Receive(m, _learner, _train, _shard, _o.Gossip, _rng, _replay, _penalty, _dp))
                {
                    _received++;
                    if (_node.PassAt(_o.Gossip, _rng, Now(), _o.Period.TotalMilliseconds) is { } at) _passes.Writer.TryWrite(at);
                }
                Checkpoint();
            }
        }
        catch (SwarmMessageException e) { await Reject(ctx, StatusCodes.Status400BadRequest, e.Message); return; }
        ctx.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    /// <summary>
    /// The peers of a received view the node may learn: allowed by its <see cref="PeerPolicy"/> and heard of no later
    /// than now (a timestamp in the future would keep a peer in every view for ever); called under the lock.
    /// </summary>
    private IReadOnlyList<PeerDescriptor> Learnable(IReadOnlyList<PeerDescriptor> view)
    {
        long now = Now();
        var fresh = view.Select(p => p with { Timestamp = Math.Min(p.Timestamp, now) });
        if (_o.PeersFrom is not { } policy) return fresh.ToArray();
        int refused = (int)policy.Refused;
        var kept = policy.Filter(fresh, p => p.Address, a => a == Address || _node.View.Peers.Any(q => q.Address == a) || _o.Peers.Contains(a));
        if (policy.Refused > refused) _log($"{policy.Refused - refused} peer addresses in a view were not learnt (outside --peers-from, or over {policy.NewPerPeriod} new a period)");
        return kept;
    }

    private Task Reject(HttpContext ctx, int status, string reason)
    {
        Interlocked.Increment(ref _rejected);
        return HttpHost.Refuse(ctx, status, reason, _log);
    }

    /// <summary>Wall-clock time in Unix milliseconds, the clock of the node's pace and view timestamps.</summary>
    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    /// <summary>
    /// Wakes once a period (jittered ±50 %) until the node has done its cycles, gossiping when its token account
    /// or its walks let it (with walks, sending only its view otherwise), and passes on the models it forwards when
    /// its pace lets it; then serves for the linger time and stops.
    /// </summary>
    public async Task<NodeSummary> RunAsync(Dataset test, IReadOnlySet<int>? classes = null)
    {
        var forwarding = Task.Run(async () =>
        {
            await foreach (long at in _passes.Reader.ReadAllAsync())
            {
                long wait = at - Now();
                if (wait > 0) await Task.Delay(TimeSpan.FromMilliseconds(wait));
                byte[] message;
                lock (_gate)
                {
                    try { message = _node.Pass(_learner, _o.Gossip, Now()); }
                    catch (SwarmMessageException e) { _log($"a model to pass on was not sent: {e.Message}"); continue; }
                    _forwarded++;
                }
                await Gossip(message);
            }
        });
        while (_cycle < _o.Cycles)
        {
            TimeSpan wait;
            lock (_gate) wait = _o.Period * (0.5 + _rng.NextDouble());
            await Task.Delay(wait);
            byte[]? message;
            lock (_gate) message = _node.Wake(_learner, _o.Gossip, Now());
            if (message != null) await Gossip(message);
            lock (_gate)
            {
                _cycle++;
                Checkpoint();
            }
        }
        await Task.Delay(_o.Linger);
        _passes.Writer.TryComplete();
        await forwarding;
        lock (_gate)
        {
            var (held, other) = _learner.SplitAccuracy(_node.Answer, test, classes);
            return new NodeSummary(Address, _learner.Accuracy(_node.Answer, test), _node.Age, _cycle, _received, Interlocked.Read(ref _rejected), Interlocked.Read(ref _sent),
                _forwarded, Interlocked.Read(ref _bytesSent), Interlocked.Read(ref _sendFailures), Resumed, held, other, _node.WalksStarted, _node.WalksJoined, _dp?.Epsilon);
        }
    }

    /// <summary>Sends the message to a peer from the view, trying another when one cannot be reached.</summary>
    private async Task Gossip(byte[] message)
    {
        for (int attempt = 0; attempt < GossipNode.SendAttempts; attempt++)
        {
            string? peer;
            lock (_gate) peer = _node.View.Pick(_rng);
            if (peer == null || await Send(peer, message)) break;
        }
    }

    /// <summary>Posts the message to <paramref name="peer"/>; false when the peer cannot be reached (it then leaves the view).</summary>
    private async Task<bool> Send(string peer, byte[] message)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"http://{peer}{GossipPath}") { Content = new ByteArrayContent(message) };
            request.Headers.TryAddWithoutValidation(MessageAuth.Header, _auth.Sign("POST", GossipPath, peer, message));
            using var response = await _http.SendAsync(request);
            Interlocked.Increment(ref _sent);
            Interlocked.Add(ref _bytesSent, message.Length);
            if (!response.IsSuccessStatusCode)
                _log($"peer {peer} refused a model: {(int)response.StatusCode} {(await response.Content.ReadAsStringAsync()).Trim()}");
            return true;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            Interlocked.Increment(ref _sendFailures);
            lock (_gate)
            {
                _node.View.Remove(peer);
                if (_node.View.Peers.Count == 0) _node.View.Merge(_o.Peers.Where(p => p != Address).Select(p => new PeerDescriptor(p, 0)));
            }
            _log($"peer {peer} unreachable ({e.Message.Split('(')[0].Trim()}); dropped from the view");
            return false;
        }
    }

    /// <summary>Models, messages' residual, age, the answer's weight, cycle, tokens, walk state, view and memory, written atomically; called under the lock after every change.</summary>
    private void Checkpoint()
    {
        if (_o.CheckpointPath == null) return;
        var models = new List<(string, float[])> { ("weights", _node.Weights), ("answer", _node.Answer) };
        if (_node.Feedback is { } f) models.Add(("residual", f.Residual));
        var meta = new Dictionary<string, string>
        {
            ["age"] = _node.Age.ToString("R", CultureInfo.InvariantCulture),
            ["answer_weight"] = _node.AnswerWeight.ToString("R", CultureInfo.InvariantCulture),
            ["cycle"] = _cycle.ToString(CultureInfo.InvariantCulture),
            ["tokens"] = _node.Tokens.ToString(CultureInfo.InvariantCulture),
            ["quiet"] = _node.Quiet.ToString(CultureInfo.InvariantCulture),
            ["data"] = _dataId.ToString(CultureInfo.InvariantCulture),
            ["view"] = JsonSerializer.Serialize(_node.View.Peers.Select(p => new[] { p.Address, p.Timestamp.ToString(CultureInfo.InvariantCulture) })),
            ["dp_steps"] = (_dp?.Accountant.Steps ?? 0).ToString(CultureInfo.InvariantCulture), // a restart must not start ε at 0
        };
        if (_memory?.Persist(_o.CheckpointPath, _learner) is var (key, value)) meta[key] = value;
        SwarmCheckpoint.Write(_o.CheckpointPath, Kind, _learner, models, meta);
        _memory?.Referenced(_o.CheckpointPath);
    }

    /// <summary>Loads a node checkpoint into <paramref name="node"/>; returns its cycle, the fingerprint of its data and, when asked for, its memory.</summary>
    private static (int Cycle, ulong Data, DeviceMemory? Memory, long DpSteps) Restore(string path, GossipNode node, LocalLearner learner, MemoryOptions memory, Dataset data)
    {
        var checkpoint = SwarmCheckpoint.Read(path, Kind, "gossip node", learner);
        long tokens = checkpoint.HasText("tokens") ? checkpoint.Count("tokens") : 0; // written before token accounts: none saved
        if (tokens > GossipOptions.MaxTokens) throw checkpoint.Bad("tokens");
        long quiet = checkpoint.HasText("quiet") ? checkpoint.Count("quiet") : 0; // written before walks: quiet since the restart
        if (quiet > GossipOptions.MaxWalk) throw checkpoint.Bad("quiet");
        node.Restore(checkpoint.Model("weights"), checkpoint.Model("answer"), checkpoint.Has("residual") ? checkpoint.Model("residual") : null,
            checkpoint.NonNegative("age"), checkpoint.NonNegative("answer_weight"), (int)tokens, (int)quiet);
        string[][] view;
        try { view = JsonSerializer.Deserialize<string[][]>(checkpoint.Text("view")) ?? []; }
        catch (JsonException) { throw new ColdmindException($"The checkpoint '{path}' holds a bad view."); }
        foreach (var peer in view)
            if (peer.Length == 2 && long.TryParse(peer[1], CultureInfo.InvariantCulture, out long heard)) node.View.Merge([new PeerDescriptor(peer[0], heard)]);
        return ((int)Math.Min(checkpoint.Count("cycle"), int.MaxValue),
            ulong.TryParse(checkpoint.Text("data"), NumberStyles.None, CultureInfo.InvariantCulture, out ulong dataId) ? dataId : throw checkpoint.Bad("data"),
            DeviceMemory.FromCheckpoint(checkpoint, path, memory, learner, data.FeatureCount, data.Classes),
            checkpoint.HasText("dp_steps") ? checkpoint.Count("dp_steps") : 0);
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        _meter.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
