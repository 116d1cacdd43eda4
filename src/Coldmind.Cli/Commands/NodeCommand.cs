using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Data;
using Coldmind.Network;
using Coldmind.Swarm;
using Coldmind.Tensors;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind node`: one device on a real network (HTTP, HMAC-signed), resumable from its checkpoint: a gossip-learning
/// peer, or a FedAvg client of a `coldmind coordinator`.
/// </summary>
internal static class NodeCommand
{
    public static Command Create()
    {
        var protocol = new Option<string>("--protocol") { Description = "gossip (peer to peer) or fedavg (a client of --coordinator)", DefaultValueFactory = _ => "gossip" };
        var listen = new Option<string?>("--listen") { Description = "gossip: HOST:PORT this node listens on, and its address for peers" };
        var peers = new Option<string?>("--peers") { Description = "gossip: HOST:PORT,... of peers to start from (Newscast discovers the rest)" };
        var coordinator = new Option<string?>("--coordinator") { Description = "fedavg: HOST:PORT of the coordinator" };
        var data = new DataOptions();
        var shard = new Option<string>("--shard") { Description = "i/n: this node holds the i-th of n parts of the training split (0-based)", Required = true };
        var partition = new Option<string>("--partition") { Description = "how the n parts are drawn: iid, dirichlet:α or classes:k", DefaultValueFactory = _ => "iid" };
        var classes = new Option<string?>("--classes") { Description = "keep only these classes of the shard, e.g. 0-4 (a task of a sequence)" };
        var replay = new Option<int>("--replay") { Description = "examples the node remembers across restarts on new data and replays beside each batch (0: none)", DefaultValueFactory = _ => 0 };
        var ewc = new Option<float>("--ewc") { Description = "EWC strength λ holding the weights that mattered for earlier data when the node restarts on new data (0: none)", DefaultValueFactory = _ => 0 };
        var keyFile = new Option<string>("--key-file") { Description = "the swarm secret or this device's key (`coldmind key`); every message is signed with it", Required = true };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "file the node saves itself to after every change and resumes from" };
        var period = new Option<double>("--period") { Description = "seconds between the node's messages (gossip) or check-ins (fedavg)", DefaultValueFactory = _ => 1 };
        var cycles = new Option<int>("--cycles") { Description = "gossip: messages to send before stopping", DefaultValueFactory = _ => 60 };
        var linger = new Option<double>("--linger") { Description = "gossip: seconds to keep receiving after the last cycle", DefaultValueFactory = _ => 2 };
        var giveUp = new Option<double>("--give-up") { Description = "fedavg: stop with an error after this many seconds without an answer", DefaultValueFactory = _ => 60 };
        var hidden = new Option<string>("--hidden") { Description = "hidden layer sizes (the same on every node), or none", DefaultValueFactory = _ => "32" };
        var localSteps = new Option<int>("--local-steps") { Description = "SGD steps per received model", DefaultValueFactory = _ => 10 };
        var batch = new Option<int>("--batch") { Description = "local mini-batch size", DefaultValueFactory = _ => 16 };
        var lr = new Option<float>("--lr") { Description = "local SGD learning rate", DefaultValueFactory = _ => 0.1f };
        var compress = new Option<string>("--compress") { Description = "f32, int8, ternary, sign, topk:F or entropy:B (B bits a value)", DefaultValueFactory = _ => "f32" };
        var view = new Option<int>("--view") { Description = "gossip: peers in the partial view", DefaultValueFactory = _ => 20 };
        var clip = TrustOptions.Clip("gossip: bound on how far a received model may be from the node's own, for its merge and its answer");
        var ageLead = TrustOptions.AgeLead();
        var peersFrom = TrustOptions.PeersFrom();
        var newPeers = TrustOptions.NewPeers();
        var dp = new TrustOptions.Dp();
        var answerAverage = new Option<float>("--answer-average") { Description = "gossip: the node answers with a running average of the models it received, decaying by this a message (0: the last one)", DefaultValueFactory = _ => GossipOptions.DefaultAverage };
        var ownAge = new Option<float>("--own-age") { Description = "gossip: the share of its own age a receiver counts when it merges a model (1: the age-weighted average; lower takes more of a walk)", DefaultValueFactory = _ => 1 };
        var tokens = new Option<int>("--tokens") { Description = "gossip: the node saves up to this many unsent messages (its first wakes send nothing) and spends them forwarding models as they arrive (0: one message each period)", DefaultValueFactory = _ => 0 };
        var walk = new Option<int>("--walk") { Description = "gossip: models walk, the node merging, training on and passing on each one it gets; it starts one after this many periods without any, and other wakes send only its view (0: it sends its own model each period)", DefaultValueFactory = _ => 0 };
        var pace = new Option<double>("--pace") { Description = "walks: the most models the node sends a period; a walk waits its turn, and one that arrives meanwhile joins it (0: it passes each model on as soon as it has trained on it)", DefaultValueFactory = _ => 0 };
        var prox = new Option<float>("--prox") { Description = "fedavg: FedProx μ (0: FedAvg)", DefaultValueFactory = _ => 0 };
        var maxMessage = new Option<int>("--max-message-bytes") { Description = "larger messages are refused (default: an f32 model and a full view, with room)" };
        var seed = CommonOptions.Seed();
        var json = CommonOptions.Json();
        var cmd = new Command("node", "Run one learning device over HTTP: a gossip peer (no server) or a FedAvg client; it trains on its shard and survives restarts.")
        {
            protocol, listen, peers, coordinator, shard, partition, classes, replay, ewc, keyFile, checkpoint, period, cycles, linger, giveUp,
            hidden, localSteps, batch, lr, compress, view, clip, ageLead, peersFrom, newPeers, answerAverage, ownAge, tokens, walk, pace, prox, maxMessage, seed, json,
        };
        foreach (var o in dp.All) cmd.Options.Add(o);
        data.AddTo(cmd);
        cmd.SetAction(async r =>
        {
            string proto = r.GetValue(protocol)!.Trim().ToLowerInvariant();
            if (proto is not ("gossip" or "fedavg")) throw new ColdmindException($"--protocol takes gossip or fedavg, got '{r.GetValue(protocol)}'.");
            if (proto == "gossip" && (r.GetValue(listen) == null || r.GetValue(peers) == null))
                throw new ColdmindException("A gossip node needs --listen HOST:PORT and --peers HOST:PORT,...");
            if (proto == "fedavg" && r.GetValue(coordinator) == null) throw new ColdmindException("A fedavg node needs --coordinator HOST:PORT.");
            var (index, count) = ParseShard(r.GetValue(shard)!);
            var keys = KeyRing.Read(r.GetValue(keyFile)!);
            // a device key file names the device; with the swarm secret a node is its address, a client its shard
            using var auth = new MessageAuth(keys, keys.NodeId ?? (proto == "gossip" ? r.GetValue(listen)! : $"shard {index}/{count}"), r.GetValue(keyFile));
            var local = new LocalTraining(r.GetValue(localSteps), r.GetValue(batch), r.GetValue(lr));
            var codec = ExchangeCodec.Parse(r.GetValue(compress)!);
            var gossip = new GossipOptions(local, codec, r.GetValue(view), GossipOptions.ParseClip(r.GetValue(clip)!), r.GetValue(answerAverage), r.GetValue(tokens),
                r.GetValue(walk), r.GetValue(pace), r.GetValue(ownAge), r.GetValue(ageLead));
            gossip.Validate();
            if (r.GetValue(cycles) < 1 || !(r.GetValue(period) > 0) || !(r.GetValue(linger) >= 0)) throw new ColdmindException("--cycles must be at least 1, --period positive and --linger non-negative.");
            ulong s = r.GetValue(seed);
            var splits = data.Load(r, s);
            var shards = Partition.Parse(r.GetValue(partition)!).Split(splits.Train, count, new Rng(s ^ 0x5_4A_2D));
            var examples = shards[index];
            HashSet<int>? held = null;
            if (r.GetValue(classes) is { } kept)
            {
                var set = held = CommonOptions.ParseClasses(kept, splits.Train.Classes, "--classes");
                examples = examples.Where(e => set.Contains(splits.Train.Labels[e])).ToArray();
                if (examples.Length == 0) throw new ColdmindException($"Shard {index}/{count} holds no example of classes {kept}.");
            }
            var memory = new MemoryOptions(r.GetValue(replay), r.GetValue(ewc));
            memory.Validate();
            var privacy = dp.Read(r);
            if (privacy != null && memory.Enabled) throw new ColdmindException("--dp with --replay or --ewc is not built: what a device remembers would need its own accounting.");
            var learner = LocalLearner.For(splits.Train, CommonOptions.ParseHidden(r.GetValue(hidden)!), s);
            int maxBytes = r.GetValue(maxMessage) is > 0 and var m ? m : learner.ParameterCount * 4 + SwarmMessage.MaxView * 300 + 4096;
            if (proto == "fedavg")
                return await RunClient(new FedAvgClientOptions(r.GetValue(coordinator)!, auth.Self, local, r.GetValue(prox), codec,
                    TimeSpan.FromSeconds(r.GetValue(period)), TimeSpan.FromSeconds(r.GetValue(giveUp)), r.GetValue(checkpoint), maxBytes, memory, privacy), learner, splits, examples, held, r.GetValue(classes), auth, r.GetValue(json));
            var peerList = r.GetValue(peers)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            foreach (var p in peerList) HttpHost.ParseEndpoint(p);
            var policy = new PeerPolicy(r.GetValue(peersFrom) is { } cidrs ? PeerPolicy.ParseNetworks(cidrs) : PeerPolicy.SeedNetworks(peerList.Append(r.GetValue(listen)!)),
                r.GetValue(newPeers), TimeSpan.FromSeconds(r.GetValue(period)));
            var options = new NodeOptions(r.GetValue(listen)!, peerList, gossip,
                TimeSpan.FromSeconds(r.GetValue(period)), r.GetValue(cycles), r.GetValue(checkpoint), maxBytes, TimeSpan.FromSeconds(r.GetValue(linger)), memory, policy, privacy);
            var log = (string line) => Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {options.Listen} {line}");
            await using var node = await SwarmNode.StartAsync(options, learner, splits.Train, examples, auth, log);
            log($"listening: shard {index}/{count} ({examples.Length} examples), {learner.ParameterCount} parameters, {peerList.Length} bootstrap peers");
            var summary = await node.RunAsync(splits.Test, held);
            if (r.GetValue(json))
                Console.WriteLine(JsonOutput.Serialize(new
                {
                    address = summary.Address, test_accuracy = summary.TestAccuracy, age = summary.Age, cycles = summary.Cycles, received = summary.Received,
                    rejected = summary.Rejected, sent = summary.Sent, forwarded = summary.Forwarded, bytes_sent = summary.BytesSent, send_failures = summary.SendFailures, resumed = summary.Resumed,
                    walks_started = summary.WalksStarted, walks_joined = summary.WalksJoined,
                    epsilon = summary.Epsilon, delta = options.Dp?.Delta,
                    held_classes_accuracy = summary.HeldClassesAccuracy, other_classes_accuracy = summary.OtherClassesAccuracy,
                }));
            else
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{summary.Address}: test accuracy {summary.TestAccuracy:P2}{Split(summary.HeldClassesAccuracy, summary.OtherClassesAccuracy, r.GetValue(classes))} after {summary.Cycles} cycles; age {summary.Age:F0}; received {summary.Received}, rejected {summary.Rejected}, sent {summary.Sent} ({summary.BytesSent / 1e6:F2} MB{(summary.Forwarded > 0 ? $", {summary.Forwarded} forwarded on arrival" : "")}{(summary.WalksStarted > 0 ? $", {summary.WalksStarted} walks started" : "")}{(summary.WalksJoined > 0 ? $", {summary.WalksJoined} joined one waiting" : "")}), {summary.SendFailures} sends failed{(summary.Resumed ? "; resumed from its checkpoint" : "")}{(summary.Epsilon is { } e ? $"; DP-SGD (ε, δ) = ({e:F2}, {options.Dp!.Delta:G2})" : "")}"));
            return 0;
        });
        return cmd;
    }

    private static async Task<int> RunClient(FedAvgClientOptions o, LocalLearner learner, DataSplits splits, int[] shard, HashSet<int>? held, string? classes,
        MessageAuth auth, bool json)
    {
        var log = (string line) => Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {o.Name} {line}");
        using var client = new FedAvgClient(o, learner, splits.Train, shard, auth, log);
        log($"FedAvg client of {o.Coordinator}: {shard.Length} examples, {learner.ParameterCount} parameters");
        var summary = await client.RunAsync(splits.Test, held);
        if (json)
            Console.WriteLine(JsonOutput.Serialize(new
            {
                name = summary.Name, test_accuracy = summary.TestAccuracy, last_round = summary.Round, rounds_trained = summary.RoundsTrained,
                bytes_sent = summary.BytesSent, bytes_received = summary.BytesReceived, failures = summary.Failures, resumed = summary.Resumed,
                held_classes_accuracy = summary.HeldClassesAccuracy, other_classes_accuracy = summary.OtherClassesAccuracy,
                epsilon = summary.Epsilon, delta = o.Dp?.Delta,
            }));
        else
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{summary.Name}: test accuracy {summary.TestAccuracy:P2}{Split(summary.HeldClassesAccuracy, summary.OtherClassesAccuracy, classes)} with the final global model; trained in {summary.RoundsTrained} rounds; sent {summary.BytesSent / 1e6:F2} MB, received {summary.BytesReceived / 1e6:F2} MB; {summary.Failures} failed requests{(summary.Resumed ? "; resumed from its checkpoint" : "")}{(summary.Epsilon is { } e ? $"; DP-SGD (ε, δ) = ({e:F2}, {o.Dp!.Delta:G2})" : "")}"));
        return 0;
    }

    /// <summary>The summary's split of the test accuracy between the classes a device holds and the others (empty without --classes).</summary>
    private static string Split(float? held, float? other, string? classes) =>
        held is not { } h ? ""
        : other is { } o ? string.Create(CultureInfo.InvariantCulture, $" ({h:P2} on its classes {classes}, {o:P2} on the others)")
        : string.Create(CultureInfo.InvariantCulture, $" ({h:P2} on its classes {classes})");

    private static (int Index, int Count) ParseShard(string text)
    {
        var parts = text.Split('/');
        if (parts.Length == 2 && int.TryParse(parts[0], CultureInfo.InvariantCulture, out int i) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out int n) && n >= 1 && i >= 0 && i < n)
            return (i, n);
        throw new ColdmindException($"--shard takes i/n with 0 ≤ i < n (e.g. 3/8), got '{text}'.");
    }
}
