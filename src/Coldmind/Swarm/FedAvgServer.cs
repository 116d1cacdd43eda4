using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using System.Globalization;
using System.Text;
using Coldmind.Data;
using Coldmind.Network;

namespace Coldmind.Swarm;

/// <summary>
/// What `coldmind coordinator` runs: rounds of <see cref="ClientsPerRound"/> clients, closed early by <see cref="RoundTimeout"/>,
/// the global model sent in <see cref="Downlink"/>; with <see cref="Dp"/>, client-level DP over a
/// <see cref="Population"/> of devices (<see cref="Privacy.DpFedAvg"/>), stopping before ε passes its target.
/// </summary>
public sealed record CoordinatorOptions(string Listen, int Rounds, int ClientsPerRound, TimeSpan RoundTimeout, Aggregation Aggregation,
    ExchangeCodec Downlink, string? CheckpointPath, int MaxMessageBytes, TimeSpan Linger, Nn.Privacy.DpOptions? Dp = null, int Population = 0);

/// <summary>How a coordinator's run ended.</summary>
public sealed record CoordinatorSummary(float TestAccuracy, long Rounds, long Updates, long Rejected, long BytesSent, long BytesReceived, bool Resumed, double? Epsilon = null);

/// <summary>
/// The FedAvg baseline over HTTP (`coldmind coordinator`): the <see cref="FedAvgCoordinator"/> behind Kestrel.
/// Devices pull, as in cross-device federated learning (Bonawitz et al. 2019), so a client needs no open port:
/// <code>
/// POST /v1/fedavg/checkin  body: the client's name → 200 the global model (picked for this round, or the final
///                          model with X-Coldmind-Final: 1), or 204 (the round is full, or this client answered it)
/// POST /v1/fedavg/update   body: an update message for the open round → 204
/// </code>
/// The first <see cref="CoordinatorOptions.ClientsPerRound"/> clients to check in join a round; it closes when they
/// have all answered or <see cref="CoordinatorOptions.RoundTimeout"/> after the first joined, with what arrived.
/// Requests carry the shared key's HMAC and replies are signed over the request's signature (<see cref="MessageAuth"/>).
/// Bodies over the bound get 413, bad signatures 401, invalid messages 400, updates from a client not in the open
/// round 409; each rejection is logged. The global model and its round are checkpointed atomically after each round.
/// </summary>
public sealed class FedAvgServer : IAsyncDisposable
{
    public const string CheckInPath = "/v1/fedavg/checkin";
    public const string UpdatePath = "/v1/fedavg/update";
    public const string FinalHeader = "X-Coldmind-Final";
    /// <summary>An update may weigh at most this many examples: a client cannot claim the whole round's weight unbounded.</summary>
    public const double MaxExamples = 1e7;

    private readonly WebApplication _app;
    private readonly FedAvgCoordinator _coordinator;
    private readonly LocalLearner _learner;
    private readonly CoordinatorOptions _o;
    private readonly MessageAuth _auth;
    private readonly Action<string> _log;
    private readonly Lock _gate = new();
    private readonly HashSet<string> _joined = [];
    private readonly Dictionary<string, (SwarmMessage Update, double Examples)> _updates = [];
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[] _global;
    private DateTime _firstJoined;
    private long _updatesReceived, _rejected, _bytesSent, _bytesReceived;

    public bool Resumed { get; }

    private FedAvgServer(WebApplication app, FedAvgCoordinator coordinator, LocalLearner learner, CoordinatorOptions o, MessageAuth auth, Action<string> log, bool resumed)
    {
        _app = app; _coordinator = coordinator; _learner = learner; _o = o; _auth = auth; _log = log;
        Resumed = resumed;
        _global = coordinator.GlobalMessage(o.Downlink).Bytes;
        if (Done) _finished.SetResult();
    }

    public static async Task<FedAvgServer> StartAsync(CoordinatorOptions o, LocalLearner learner, MessageAuth auth, Action<string> log)
    {
        if (o.Rounds < 1 || o.ClientsPerRound < 1 || !(o.RoundTimeout > TimeSpan.Zero))
            throw new ColdmindException("--rounds and --clients must be at least 1 and --round-timeout positive.");
        var app = HttpHost.Create(o.Listen, o.MaxMessageBytes);
        var coordinator = new FedAvgCoordinator(learner, o.Aggregation, o.Listen)
            { Privacy = o.Dp is { } dp ? new Privacy.DpFedAvg(dp, o.ClientsPerRound, o.Population) : null };
        bool resumed = false;
        if (o.CheckpointPath != null && File.Exists(o.CheckpointPath))
        {
            Restore(o.CheckpointPath, coordinator, learner);
            resumed = true;
            log($"resumed from {o.CheckpointPath}: round {coordinator.Round}");
        }
        if (auth.Self != o.Listen) throw new ColdmindException($"The key file is node {auth.Self}'s; this coordinator listens as {o.Listen}.");
        if (o.CheckpointPath != null) auth.PersistReplays(o.CheckpointPath);
        var server = new FedAvgServer(app, coordinator, learner, o, auth, log, resumed);
        app.MapPost(CheckInPath, server.CheckIn);
        app.MapPost(UpdatePath, server.Update);
        try { await app.StartAsync(); }
        catch (IOException e) { throw new ColdmindException($"Cannot listen on {o.Listen}: {e.Message}"); }
        return server;
    }

    private async Task CheckIn(HttpContext ctx)
    {
        var (body, sender) = await Authenticated(ctx, CheckInPath, SwarmMessage.MaxAddressBytes);
        if (body == null) return;
        string client = Encoding.UTF8.GetString(body);
        if (client != sender) { await Reject(ctx, StatusCodes.Status400BadRequest, $"{sender} checked in as '{client}'"); return; }
        byte[]? reply;
        bool final;
        lock (_gate)
        {
            final = Done;
            if (!final && !_joined.Contains(client) && _joined.Count < _o.ClientsPerRound)
            {
                if (_joined.Count == 0) _firstJoined = DateTime.UtcNow;
                _joined.Add(client);
            }
            // a client that joined and has not answered gets the model again: it may have restarted
            reply = final || _joined.Contains(client) && !_updates.ContainsKey(client) ? _global : null;
        }
        if (reply == null) { ctx.Response.StatusCode = StatusCodes.Status204NoContent; return; }
        ctx.Response.Headers[MessageAuth.Header] = _auth.SignReply(ctx.Request.Headers[MessageAuth.Header]!, reply);
        if (final) ctx.Response.Headers[FinalHeader] = "1";
        ctx.Response.ContentType = "application/octet-stream";
        Interlocked.Add(ref _bytesSent, reply.Length);
        await ctx.Response.Body.WriteAsync(reply);
    }

    private async Task Update(HttpContext ctx)
    {
        var (body, sender) = await Authenticated(ctx, UpdatePath, _o.MaxMessageBytes);
        if (body == null) return;
        SwarmMessage m;
        try
        {
            m = SwarmMessage.Decode(body, _learner.ModelId, _learner.ParameterCount);
            if (m.Kind != SwarmMessage.Type.Update) throw new SwarmMessageException($"a {m.Kind} message sent as an update");
            if (m.Sender != sender) throw new SwarmMessageException($"an update from {m.Sender} signed by {sender}");
            if (m.Age is < 1 or > MaxExamples || m.Age != Math.Floor(m.Age))
                throw new SwarmMessageException($"an update weighing {m.Age} examples; a whole number between 1 and {MaxExamples:G}");
        }
        catch (SwarmMessageException e) { await Reject(ctx, StatusCodes.Status400BadRequest, e.Message); return; }
        string? conflict = null;
        lock (_gate)
        {
            if (m.Round != _coordinator.Round) conflict = $"an update for round {m.Round}; round {_coordinator.Round} is open";
            else if (!_joined.Contains(m.Sender)) conflict = $"{m.Sender} did not join round {m.Round}";
            else if (!_updates.TryAdd(m.Sender, (m, m.Age))) conflict = $"{m.Sender} already answered round {m.Round}";
            else
            {
                _updatesReceived++;
                if (_updates.Count == _joined.Count && _joined.Count == _o.ClientsPerRound) CompleteRound("all answered");
            }
        }
        if (conflict != null) { await Reject(ctx, StatusCodes.Status409Conflict, conflict); return; }
        ctx.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    /// <summary>The body of a signed request no longer than <paramref name="limit"/> and who signed it, or a null body once the request is rejected.</summary>
    private async Task<(byte[]? Body, string Sender)> Authenticated(HttpContext ctx, string path, int limit)
    {
        var body = await HttpHost.ReadBounded(ctx.Request, limit);
        if (body == null) { await Reject(ctx, StatusCodes.Status413PayloadTooLarge, $"request over {limit} bytes"); return (null, ""); }
        Interlocked.Add(ref _bytesReceived, body.Length);
        if (!_auth.Verify(ctx.Request.Headers[MessageAuth.Header], "POST", path, body, out string sender, out string reason))
        { await Reject(ctx, StatusCodes.Status401Unauthorized, reason); return (null, ""); }
        return (body, sender);
    }

    private Task Reject(HttpContext ctx, int status, string reason)
    {
        Interlocked.Increment(ref _rejected);
        return HttpHost.Refuse(ctx, status, reason, _log);
    }

    /// <summary>Aggregates what arrived, checkpoints and opens the next round; called under the lock.</summary>
    private void CompleteRound(string why)
    {
        int answered = _updates.Count, joined = _joined.Count;
        _coordinator.Complete(_updates.Values.ToList());
        _joined.Clear();
        _updates.Clear();
        _global = _coordinator.GlobalMessage(_o.Downlink).Bytes;
        Checkpoint();
        string privacy = _coordinator.Privacy is { } dp ? string.Create(CultureInfo.InvariantCulture, $"; (ε, δ) = ({dp.Epsilon:F2}, {dp.Options.Delta:G2})") : "";
        _log(string.Create(CultureInfo.InvariantCulture, $"round {_coordinator.Round} of {_o.Rounds} done ({why}): {answered} of {joined} clients answered{privacy}"));
        if (_coordinator.Privacy?.Exhausted == true && _coordinator.Round < _o.Rounds)
            _log(string.Create(CultureInfo.InvariantCulture, $"stopping: one more round would take ε past the target {_coordinator.Privacy.Options.TargetEpsilon}"));
        if (Done) _finished.TrySetResult();
    }

    /// <summary>Every round run, or the privacy budget spent.</summary>
    private bool Done => _coordinator.Round >= _o.Rounds || _coordinator.Privacy?.Exhausted == true;

    /// <summary>Closes rounds that time out until the last round is done, serves the final model for the linger time, and stops.</summary>
    public async Task<CoordinatorSummary> RunAsync(Dataset test)
    {
        while (!_finished.Task.IsCompleted)
        {
            await Task.WhenAny(_finished.Task, Task.Delay(TimeSpan.FromMilliseconds(50)));
            lock (_gate)
                if (!Done && _joined.Count > 0 && DateTime.UtcNow - _firstJoined > _o.RoundTimeout)
                    CompleteRound("timed out");
        }
        await Task.Delay(_o.Linger);
        lock (_gate)
            return new CoordinatorSummary(_learner.Accuracy(_coordinator.Global, test), _coordinator.Round, _updatesReceived, Interlocked.Read(ref _rejected),
                Interlocked.Read(ref _bytesSent), Interlocked.Read(ref _bytesReceived), Resumed, _coordinator.Privacy?.Epsilon);
    }

    private const string Kind = "fedavg";

    private void Checkpoint()
    {
        if (_o.CheckpointPath == null) return;
        SwarmCheckpoint.Write(_o.CheckpointPath, Kind, _learner, [("global", _coordinator.Global)],
            new Dictionary<string, string>
            {
                ["round"] = _coordinator.Round.ToString(CultureInfo.InvariantCulture),
                // what the accountant has composed: a restarted coordinator must not start its ε at 0
                ["dp_steps"] = (_coordinator.Privacy?.Accountant.Steps ?? 0).ToString(CultureInfo.InvariantCulture),
            });
    }

    private static void Restore(string path, FedAvgCoordinator coordinator, LocalLearner learner)
    {
        var checkpoint = SwarmCheckpoint.Read(path, Kind, "coordinator", learner);
        coordinator.Restore(checkpoint.Model("global"), checkpoint.Count("round"));
        long dpSteps = checkpoint.HasText("dp_steps") ? checkpoint.Count("dp_steps") : 0;
        if (dpSteps > coordinator.Round) throw checkpoint.Bad("dp_steps");
        if (coordinator.Privacy is { } dp) dp.Accountant.Step(dp.SamplingRate, dp.Options.NoiseMultiplier, dpSteps);
        else if (dpSteps > 0) throw new ColdmindException($"The checkpoint '{path}' was trained with --dp; resume it with --dp, or its ε is lost.");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
