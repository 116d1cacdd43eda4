using System.Globalization;
using System.Text;
using Coldmind.Data;
using Coldmind.Network;
using Coldmind.Tensors;

namespace Coldmind.Swarm;

/// <summary>What a FedAvg device runs: its coordinator, name, local training, timing and memory against forgetting.</summary>
public sealed record FedAvgClientOptions(string Coordinator, string Name, LocalTraining Local, float Proximal, ExchangeCodec Codec,
    TimeSpan Period, TimeSpan GiveUp, string? CheckpointPath, int MaxMessageBytes, MemoryOptions? Memory = null, Nn.Privacy.DpOptions? Dp = null);

/// <summary>
/// How a FedAvg device's run ended: the final global model's test accuracy, split as a gossip node's is
/// (<see cref="NodeSummary"/>) between the classes the device holds and the others when it holds only some.
/// </summary>
public sealed record FedAvgClientSummary(string Name, float TestAccuracy, long Round, int RoundsTrained, long BytesSent, long BytesReceived, long Failures, bool Resumed,
    float? HeldClassesAccuracy = null, float? OtherClassesAccuracy = null, double? Epsilon = null);

/// <summary>
/// A FedAvg device over HTTP (`coldmind node --protocol fedavg`): once a period (jittered ±50 %) it checks in with
/// the <see cref="FedAvgServer"/>; when picked it trains from the global model and posts its update, with error
/// feedback for a lossy codec, and it stops when the coordinator sends the final model. Replies must carry the
/// shared key's signature over the request's own and are decoded with the same validation as every message.
/// A coordinator that cannot be reached (restarting, say) or refuses the client is retried until
/// <see cref="FedAvgClientOptions.GiveUp"/> passes without an accepted request. The residual, the last global model,
/// the fingerprint of the device's data and its <see cref="DeviceMemory"/> are checkpointed after every round; restarted
/// on other data, a device with a memory replays what it remembers of the earlier data and holds the weights that
/// mattered for it (EWC, anchored at the last global model it received), which its updates carry into the global model.
/// </summary>
public sealed class FedAvgClient : IDisposable
{
    private readonly FedAvgClientOptions _o;
    private readonly LocalLearner _learner;
    private readonly Dataset _train;
    /// <summary>The device's examples in <see cref="_train"/>, and the remembered examples of earlier data it replays.</summary>
    private readonly int[] _shard, _replay;
    /// <summary>The EWC pull of the device's memory, once it has moved on from its first data.</summary>
    private readonly Penalty? _penalty;
    /// <summary>What the device keeps of its earlier data; the checkpoint refers to its file (<see cref="DeviceMemory.Persist"/>).</summary>
    private readonly DeviceMemory? _memory;
    private readonly ulong _dataId;
    private readonly MessageAuth _auth;
    private readonly Action<string> _log;
    private readonly HttpClient _http;
    private readonly Rng _rng;
    private ErrorFeedback? _feedback;
    /// <summary>Under --dp: DP-SGD on the device and its own accountant (example-level DP for what it sends).</summary>
    private readonly Privacy.DeviceDp? _dp;
    private float[] _global;
    private long _round = -1;
    private int _trained;
    private long _bytesSent, _bytesReceived, _failures;

    public bool Resumed { get; }

    public FedAvgClient(FedAvgClientOptions o, LocalLearner learner, Dataset train, int[] shard, MessageAuth auth, Action<string> log)
    {
        (_o, _auth, _log, _learner) = (o, auth, log, learner);
        HttpHost.ParseEndpoint(o.Coordinator);
        if (auth.Self != o.Name) throw new ColdmindException($"The key file is node {auth.Self}'s; this client is {o.Name}.");
        if (!(o.Period > TimeSpan.Zero) || !(o.GiveUp > TimeSpan.Zero)) throw new ColdmindException("--period and --give-up must be positive.");
        if (o.Proximal < 0) throw new ColdmindException($"--prox must not be negative, got {o.Proximal}.");
        o.Local.Validate();
        _http = new HttpClient { BaseAddress = new Uri($"http://{o.Coordinator}"), Timeout = TimeSpan.FromSeconds(10), MaxResponseContentBufferSize = o.MaxMessageBytes };
        _rng = new Rng(learner.Seed ^ (ulong)o.Name.GetHashCode(StringComparison.Ordinal) ^ (ulong)DateTime.UtcNow.Ticks);
        _global = learner.Initial();
        if (o.Codec.Lossy) _feedback = new ErrorFeedback(learner.ParameterCount);
        if (o.Dp is { } dp)
        {
            if (o.Memory?.Enabled == true) throw new ColdmindException("--dp with --replay or --ewc is not built: what a device remembers would need its own accounting.");
            _dp = new Privacy.DeviceDp(dp, shard.Length);
        }
        var memoryOptions = o.Memory ?? new MemoryOptions();
        _dataId = train.Fingerprint(shard);
        DeviceMemory? memory = null;
        bool newData = false;
        if (o.CheckpointPath != null && File.Exists(o.CheckpointPath))
        {
            ulong data;
            (data, memory) = Restore(o.CheckpointPath, memoryOptions, train);
            Resumed = true;
            log($"resumed from {o.CheckpointPath}: last trained round {_round}");
            newData = data != _dataId;
            if (newData) log($"new data ({shard.Length} examples){(memoryOptions.Enabled ? "" : "; without --replay or --ewc its updates may make the global model forget what it learnt before")}");
        }
        memory = DeviceMemory.Start(memoryOptions, memory, newData, train, shard, learner, _global, "the last global model it received", log);
        _penalty = memory?.Penalty;
        _memory = memory;
        (_train, _shard, _replay) = memory?.Local(train, shard) ?? (train, shard, []);
    }

    /// <summary>Runs until the coordinator hands out the final model; <paramref name="held"/>: the classes the device holds, when only some.</summary>
    public async Task<FedAvgClientSummary> RunAsync(Dataset test, IReadOnlySet<int>? held = null)
    {
        var lastContact = DateTime.UtcNow;
        byte[]? lastUpdate = null;
        while (true)
        {
            await Task.Delay(_o.Period * (0.5 + _rng.NextDouble()));
            var (outcome, global, round) = await Post(FedAvgServer.CheckInPath, Encoding.UTF8.GetBytes(_o.Name));
            if (outcome is Outcome.Unreachable or Outcome.Refused)
            {
                if (DateTime.UtcNow - lastContact > _o.GiveUp)
                    throw new ColdmindException($"The coordinator {_o.Coordinator} has not answered for {_o.GiveUp.TotalSeconds:F0} s; giving up.");
                continue;
            }
            lastContact = DateTime.UtcNow;
            if (global == null) continue;
            _global = global;
            if (outcome == Outcome.Final) break;
            if (round != _round || lastUpdate == null)
            {
                lastUpdate = FedAvgCoordinator.ClientUpdate(global, round, _o.Name, _learner, _train, _shard, _o.Local, _o.Proximal, _o.Codec, _feedback, _rng,
                    memory: _penalty, replay: _replay, dp: _dp);
                _round = round;
                _trained++;
                Checkpoint();
                _log($"round {round}: trained on {_shard.Length} examples, sending an update of {lastUpdate.Length} bytes");
            }
            // the same round again means the update was lost (the coordinator restarted, say): send it again
            await Post(FedAvgServer.UpdatePath, lastUpdate);
        }
        var (heldAccuracy, otherAccuracy) = _learner.SplitAccuracy(_global, test, held);
        return new FedAvgClientSummary(_o.Name, _learner.Accuracy(_global, test), _round, _trained, _bytesSent, _bytesReceived, _failures, Resumed, heldAccuracy, otherAccuracy,
            _dp?.Epsilon);
    }

    private enum Outcome { Unreachable, Refused, Accepted, Model, Final }

    /// <summary>Sends a signed request; a reply model is checked against its signature and validated, and returned with its round.</summary>
    private async Task<(Outcome, float[]? Global, long Round)> Post(string path, byte[] body)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(body) };
        string signature = _auth.Sign("POST", path, _o.Coordinator, body);
        request.Headers.TryAddWithoutValidation(MessageAuth.Header, signature);
        try
        {
            using var response = await _http.SendAsync(request);
            var bytes = await response.Content.ReadAsByteArrayAsync();
            _bytesSent += body.Length;
            _bytesReceived += bytes.Length;
            if (!response.IsSuccessStatusCode)
            {
                _failures++;
                _log($"the coordinator refused {path}: {(int)response.StatusCode} {Encoding.UTF8.GetString(bytes).Trim()}");
                return (Outcome.Refused, null, 0);
            }
            if (bytes.Length == 0) return (Outcome.Accepted, null, 0);
            string? auth = response.Headers.TryGetValues(MessageAuth.Header, out var v) ? v.FirstOrDefault() : null;
            if (!_auth.VerifyReply(auth, signature, _o.Coordinator, bytes, out string reason))
                throw new SwarmMessageException($"a reply that fails its check: {reason}");
            var m = SwarmMessage.Decode(bytes, _learner.ModelId, _learner.ParameterCount);
            if (m.Kind != SwarmMessage.Type.Global) throw new SwarmMessageException($"a {m.Kind} message sent as the global model");
            var global = m.DenseValues().ToArray();
            TensorPrimitives.Add(global, _learner.InitialWeights, global);
            return (response.Headers.Contains(FedAvgServer.FinalHeader) ? Outcome.Final : Outcome.Model, global, m.Round);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or SwarmMessageException)
        {
            _failures++;
            _log($"{path}: {e.Message}");
            return (Outcome.Unreachable, null, 0);
        }
    }

    private const string Kind = "fedavg_client";

    private void Checkpoint()
    {
        if (_o.CheckpointPath == null) return;
        var models = new List<(string, float[])> { ("global", _global) };
        if (_feedback != null) models.Add(("residual", _feedback.Residual));
        var meta = new Dictionary<string, string>
        {
            ["round"] = _round.ToString(CultureInfo.InvariantCulture),
            ["data"] = _dataId.ToString(CultureInfo.InvariantCulture),
            ["dp_steps"] = (_dp?.Accountant.Steps ?? 0).ToString(CultureInfo.InvariantCulture), // a restart must not start ε at 0
        };
        if (_memory?.Persist(_o.CheckpointPath, _learner) is var (key, value)) meta[key] = value;
        SwarmCheckpoint.Write(_o.CheckpointPath, Kind, _learner, models, meta);
        _memory?.Referenced(_o.CheckpointPath);
    }

    /// <summary>Loads the round, global model and residual; returns the fingerprint of the data it was written on and, when asked for, the memory.</summary>
    private (ulong Data, DeviceMemory? Memory) Restore(string path, MemoryOptions memory, Dataset data)
    {
        var checkpoint = SwarmCheckpoint.Read(path, Kind, "FedAvg client", _learner);
        _round = checkpoint.Count("round", minimum: -1);
        _global = checkpoint.Model("global");
        if (_feedback != null && checkpoint.Has("residual")) checkpoint.Model("residual").CopyTo(_feedback.Residual, 0);
        long dpSteps = checkpoint.HasText("dp_steps") ? checkpoint.Count("dp_steps") : 0;
        if (_dp == null && dpSteps > 0) throw new ColdmindException($"The checkpoint '{path}' trained under --dp; resume it with --dp, or its ε is lost.");
        _dp?.Restore(dpSteps, _o.Local.BatchSize);
        return (ulong.TryParse(checkpoint.Text("data"), NumberStyles.None, CultureInfo.InvariantCulture, out ulong dataId) ? dataId : throw checkpoint.Bad("data"),
            DeviceMemory.FromCheckpoint(checkpoint, path, memory, _learner, data.FeatureCount, data.Classes));
    }

    public void Dispose() => _http.Dispose();
}
