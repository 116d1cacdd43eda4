using System.Diagnostics;
using System.Net.Sockets;
using System.Net;
using Xunit;
using Coldmind.Data;
using Coldmind.Formats;
using Coldmind.Network;
using Coldmind.Swarm;
using Coldmind.Tensors;

namespace Coldmind.Tests;

/// <summary>Eight processes load both cores: they run alone, so other tests' servers are not starved into timeouts.</summary>
[CollectionDefinition("Node processes", DisableParallelization = true)]
public class NodeProcessCollection;

/// <summary>Real `coldmind node` processes on loopback.</summary>
[Collection("Node processes")]
public class SwarmNodeProcessTests
{
    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Nodes_with_a_token_account_forward_over_http_and_checkpoint_their_tokens()
    {
        using var dir = new TempDir();
        const int count = 3, cycles = 30, account = 3;
        var summaries = await InProcessSwarm(dir, new GossipOptions(new LocalTraining(), ExchangeCodec.Parse("ternary"), Tokens: account), count, cycles);
        long sent = summaries.Sum(s => s.Sent);
        Assert.True(sent <= count * cycles, $"{sent} messages for {count * cycles} wakes");
        Assert.All(summaries, s => Assert.True(s.Received > 0 && s.Forwarded > 0 && s.Forwarded <= s.Received, $"{s.Address}: received {s.Received}, forwarded {s.Forwarded}"));
        Assert.All(summaries, s => Assert.True(s.TestAccuracy > 0.5, $"{s.Address}: {s.TestAccuracy:P1}"));
        foreach (int i in Enumerable.Range(0, count))
            Assert.InRange(int.Parse(Safetensors.Read(dir.File($"n{i}.st")).Metadata["coldmind.swarm.tokens"], System.Globalization.CultureInfo.InvariantCulture), 0, account);
    }

    [Fact]
    public async Task Walks_travel_over_http_each_wake_sends_the_view_or_a_new_walk_and_the_quiet_count_is_checkpointed()
    {
        using var dir = new TempDir();
        const int count = 4, cycles = 40, quiet = 3;
        var gossip = new GossipOptions(new LocalTraining(), ExchangeCodec.Parse("ternary"), Walk: quiet);
        var summaries = await InProcessSwarm(dir, gossip, count, cycles);
        // every wake sends one message, the view or a new walk, and every pass one model
        Assert.Equal(count * cycles + summaries.Sum(s => s.Forwarded), summaries.Sum(s => s.Sent + s.SendFailures));
        Assert.True(summaries.Sum(s => s.WalksStarted) > 0);
        Assert.All(summaries, s => Assert.True(s.Received > 0 && s.Forwarded > 0 && s.Forwarded <= s.Received, $"{s.Address}: received {s.Received}, forwarded {s.Forwarded}"));
        Assert.All(summaries, s => Assert.True(s.TestAccuracy > 0.5, $"{s.Address}: {s.TestAccuracy:P1}"));
        foreach (int i in Enumerable.Range(0, count))
        {
            var meta = Safetensors.Read(dir.File($"n{i}.st")).Metadata;
            Assert.InRange(int.Parse(meta["coldmind.swarm.quiet"], System.Globalization.CultureInfo.InvariantCulture), 0, quiet - 1);
        }
    }

    [Fact]
    public async Task A_paced_node_passes_on_at_most_its_pace_of_models_over_http()
    {
        using var dir = new TempDir();
        const int count = 4, cycles = 40;
        var gossip = new GossipOptions(new LocalTraining(), ExchangeCodec.Parse("ternary"), Walk: 3, Pace: 1);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var summaries = await InProcessSwarm(dir, gossip, count, cycles);
        double periods = clock.Elapsed / InProcessPeriod;
        // a pass comes a period after the node's last model at the soonest; walks that meet at a node go on as one
        Assert.All(summaries, s => Assert.True(s.Forwarded <= periods + 1, $"{s.Address}: {s.Forwarded} models passed on in {periods:F0} periods"));
        Assert.True(summaries.Sum(s => s.WalksJoined) > 0, "walks joined at busy nodes");
        Assert.All(summaries, s => Assert.True(s.TestAccuracy > 0.5, $"{s.Address}: {s.TestAccuracy:P1}"));
    }

    private static readonly TimeSpan InProcessPeriod = TimeSpan.FromMilliseconds(30);

    /// <summary>Runs <paramref name="count"/> gossip nodes on digits in this process, on loopback, checkpointing into <paramref name="dir"/>.</summary>
    private static async Task<NodeSummary[]> InProcessSwarm(TempDir dir, GossipOptions gossip, int count, int cycles)
    {
        var digits = BuiltinData.Load("digits");
        var train = digits.Train;
        var learner = LocalLearner.For(train, [16], 0);
        var secret = TestKeys.Secret();
        var addresses = Enumerable.Range(0, count).Select(_ => $"127.0.0.1:{FreePort()}").ToArray();
        var shards = Partition.Parse("iid").Split(train, count, new Rng(1));
        NodeOptions Options(int i) => new(addresses[i], addresses.Where((_, j) => j != i).ToList(), gossip, InProcessPeriod,
            cycles, dir.File($"n{i}.st"), MaxMessageBytes: 1 << 20, Linger: TimeSpan.FromMilliseconds(300));
        var nodes = new List<SwarmNode>();
        try
        {
            for (int i = 0; i < count; i++) nodes.Add(await SwarmNode.StartAsync(Options(i), learner, train, shards[i], new MessageAuth(secret, addresses[i]), _ => { }));
            return await Task.WhenAll(nodes.Select(n => n.RunAsync(digits.Test)));
        }
        finally
        {
            foreach (var n in nodes) await n.DisposeAsync();
        }
    }

    private sealed class NodeProcess(Process process)
    {
        public Process Process { get; } = process;
        public System.Text.StringBuilder Log { get; } = new();
        public string Output = "";

        /// <summary>The process's JSON summary; a process that printed none fails the test with its exit code and log.</summary>
        public System.Text.Json.JsonElement Summary()
        {
            Assert.True(Output.Length > 0, $"exit code {(Process.HasExited ? Process.ExitCode : "none yet")}, no summary printed; its log:\n{Log}");
            return System.Text.Json.JsonDocument.Parse(Output).RootElement;
        }
    }

    private static NodeProcess Start(string address, string peers, int shard, int count, string key, string checkpoint, int cycles) =>
        Run("node", "--listen", address, "--peers", peers, "--shard", $"{shard}/{count}", "--key-file", key,
            "--checkpoint", checkpoint, "--period", "0.25", "--cycles", cycles.ToString(System.Globalization.CultureInfo.InvariantCulture), "--linger", "3", "--json");

    private static async Task<HttpStatusCode> PostSigned(HttpClient http, string address, string path, byte[] body, MessageAuth signer)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://{address}{path}") { Content = new ByteArrayContent(body) };
        request.Headers.ExpectContinue = true; // an oversized body is refused before it is sent
        request.Headers.TryAddWithoutValidation(MessageAuth.Header, signer.Sign("POST", path, address, body));
        using var response = await http.SendAsync(request);
        return response.StatusCode;
    }

    /// <summary>A key file every process of a test swarm signs with.</summary>
    private static string SharedKey(TempDir dir)
    {
        string key = dir.File("key");
        TestKeys.WriteSecret(key);
        return key;
    }

    private static double CheckpointAge(string path) =>
        double.Parse(Safetensors.Read(path).Metadata["coldmind.swarm.age"], System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Eight_nodes_converge_two_restart_from_their_checkpoints_and_bad_messages_are_rejected_and_logged()
    {
        using var dir = new TempDir();
        string key = SharedKey(dir);
        const int count = 8, cycles = 50;
        var addresses = Enumerable.Range(0, count).Select(_ => $"127.0.0.1:{FreePort()}").ToArray();
        // each node starts knowing only its two ring neighbours; peer sampling finds the rest
        string Peers(int i) => $"{addresses[(i + 1) % count]},{addresses[(i + count - 1) % count]}";
        var nodes = Enumerable.Range(0, count).Select(i => Start(addresses[i], Peers(i), i, count, key, dir.File($"n{i}.st"), cycles)).ToArray();
        try
        {
            // hostile traffic to node 0 while the swarm runs
            // eight processes starting on a loaded machine may take longer than the 5 s this waited: wait until node 0 listens
            for (var until = DateTime.UtcNow.AddMinutes(1); DateTime.UtcNow < until; await Task.Delay(200))
                try { using var probe = new TcpClient(); await probe.ConnectAsync(IPEndPoint.Parse(addresses[0])); break; }
                catch (SocketException) { }
            await Task.Delay(TimeSpan.FromSeconds(3));
            using var http = new HttpClient();
            var learner = LocalLearner.For(BuiltinData.Load("digits").Train, [32], 0);
            var good = new GossipNode("127.0.0.1:1", learner.Initial(), 1, 4).Message(learner, ExchangeCodec.Float32, 0);
            var wrongKey = new MessageAuth(TestKeys.Secret(), "127.0.0.1:1");
            var auth = MessageAuth.FromKeyFile(key, "127.0.0.1:1");
            Task<HttpStatusCode> Post(byte[] body, MessageAuth signer) => PostSigned(http, addresses[0], SwarmNode.GossipPath, body, signer);
            Assert.Equal(HttpStatusCode.Unauthorized, await Post(good, wrongKey));
            Assert.Equal(HttpStatusCode.BadRequest, await Post(good[..^7], auth));
            Assert.Equal(HttpStatusCode.BadRequest, await Post(BadMessages.WithNaN(good), auth));
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, await Post(new byte[200_000], auth));

            // kill two nodes mid-run (once each has checkpointed what it learnt: a loaded machine starts eight processes
            // slowly), then
            // restart them from their checkpoints
            var killed = new[] { 2, 5 };
            for (var waited = System.Diagnostics.Stopwatch.StartNew();
                 !killed.All(i => File.Exists(dir.File($"n{i}.st")) && CheckpointAge(dir.File($"n{i}.st")) > 0);)
            {
                Assert.True(waited.Elapsed < TimeSpan.FromMinutes(2), "the nodes to be killed never wrote a checkpoint");
                await Task.Delay(200);
            }
            foreach (int i in killed) nodes[i].Process.Kill();
            foreach (int i in killed) await nodes[i].Process.WaitForExitAsync();
            var agesAtKill = killed.ToDictionary(i => i, i => CheckpointAge(dir.File($"n{i}.st")));
            await Task.Delay(TimeSpan.FromSeconds(1));
            foreach (int i in killed) nodes[i] = Start(addresses[i], Peers(i), i, count, key, dir.File($"n{i}.st"), cycles);

            foreach (var n in nodes) await n.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
            await Task.Delay(200);
            var summaries = nodes.Select(n => n.Summary()).ToArray();
            foreach (int i in killed)
            {
                Assert.True(summaries[i].GetProperty("resumed").GetBoolean());
                Assert.Contains("resumed from", nodes[i].Log.ToString());
                Assert.True(agesAtKill[i] > 0, "the node had learnt before it was killed");
                Assert.True(summaries[i].GetProperty("age").GetDouble() >= agesAtKill[i], "nothing learnt before the kill was lost");
                Assert.Equal(cycles, summaries[i].GetProperty("cycles").GetInt32());
            }
            var accuracies = summaries.Select(s => s.GetProperty("test_accuracy").GetDouble()).ToArray();
            Assert.True(accuracies.Average() > 0.88, $"mean accuracy {accuracies.Average():P2}: {string.Join(", ", accuracies.Select(a => a.ToString("P1")))}");
            Assert.True(accuracies.Min() > 0.8, $"worst node {accuracies.Min():P2}");
            Assert.True(summaries.All(s => s.GetProperty("received").GetInt64() > 0), "every node received models");

            string log0 = nodes[0].Log.ToString();
            Assert.Equal(4, summaries[0].GetProperty("rejected").GetInt64());
            Assert.Contains("bad signature", log0);
            Assert.Contains("finite", log0);
            Assert.Contains("ends early", log0);
            Assert.Contains("over", log0);
        }
        finally
        {
            foreach (var n in nodes) if (!n.Process.HasExited) n.Process.Kill();
        }
    }

    private static NodeProcess Run(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "Coldmind.Cli.dll"), .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        var node = new NodeProcess(Process.Start(psi)!);
        node.Process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (node.Log) node.Log.AppendLine(e.Data); };
        node.Process.OutputDataReceived += (_, e) => { if (e.Data != null) node.Output += e.Data; };
        node.Process.BeginErrorReadLine();
        node.Process.BeginOutputReadLine();
        return node;
    }

    [Fact]
    public async Task FedAvg_over_http_converges_the_coordinator_resumes_after_a_kill_and_bad_updates_are_rejected_and_logged()
    {
        using var dir = new TempDir();
        string key = SharedKey(dir);
        const int count = 6, rounds = 30;
        string address = $"127.0.0.1:{FreePort()}";
        NodeProcess Coordinator() => Run("coordinator", "--listen", address, "--key-file", key, "--checkpoint", dir.File("coordinator.st"),
            "--rounds", rounds.ToString(System.Globalization.CultureInfo.InvariantCulture), "--clients", "3", "--round-timeout", "3", "--linger", "3", "--json");
        NodeProcess Client(int i) => Run("node", "--protocol", "fedavg", "--coordinator", address, "--shard", $"{i}/{count}", "--key-file", key,
            "--checkpoint", dir.File($"c{i}.st"), "--period", "0.1", "--json");
        long Round() => File.Exists(dir.File("coordinator.st"))
            ? long.Parse(Safetensors.Read(dir.File("coordinator.st")).Metadata["coldmind.fedavg.round"], System.Globalization.CultureInfo.InvariantCulture) : 0;
        var coordinator = Coordinator();
        var clients = Enumerable.Range(0, count).Select(Client).ToArray();
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (Round() < 5 && DateTime.UtcNow < deadline) await Task.Delay(100);
            Assert.True(Round() >= 5, "five rounds done\n" + coordinator.Log);

            // hostile traffic to the coordinator while it runs
            using var http = new HttpClient();
            var learner = LocalLearner.For(BuiltinData.Load("digits").Train, [32], 0);
            var data = BuiltinData.Load("digits").Train;
            byte[] Update(long round) => FedAvgCoordinator.ClientUpdate(learner.Initial(), round, "intruder", learner, data, [0, 1, 2], new LocalTraining(), 0, ExchangeCodec.Float32, null, new Rng(1));
            var wrongKey = new MessageAuth(TestKeys.Secret(), "intruder");
            var auth = MessageAuth.FromKeyFile(key, "intruder");
            Task<HttpStatusCode> Post(byte[] body, MessageAuth signer) => PostSigned(http, address, FedAvgServer.UpdatePath, body, signer);
            var good = Update(Round());
            Assert.Equal(HttpStatusCode.Unauthorized, await Post(good, wrongKey));
            Assert.Equal(HttpStatusCode.BadRequest, await Post(good[..^7], auth));
            Assert.Equal(HttpStatusCode.BadRequest, await Post(BadMessages.WithNaN(good), auth));
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, await Post(new byte[200_000], auth));
            Assert.Equal(HttpStatusCode.Conflict, await Post(Update(rounds + 5), auth)); // not the open round, and "intruder" never joined one

            // kill the coordinator and one client mid-run, then restart both from their checkpoints
            var first = coordinator;
            coordinator.Process.Kill();
            clients[1].Process.Kill();
            await coordinator.Process.WaitForExitAsync();
            await clients[1].Process.WaitForExitAsync();
            long atKill = Round();
            await Task.Delay(TimeSpan.FromSeconds(1));
            coordinator = Coordinator();
            clients[1] = Client(1);

            await coordinator.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
            foreach (var c in clients) await c.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
            await Task.Delay(200);
            Assert.True(coordinator.Process.ExitCode == 0, coordinator.Log.ToString());
            var summary = coordinator.Summary();
            Assert.True(summary.GetProperty("resumed").GetBoolean());
            Assert.Contains($"resumed from {dir.File("coordinator.st")}: round {atKill}", coordinator.Log.ToString());
            Assert.Equal(rounds, summary.GetProperty("rounds").GetInt64());
            float global = summary.GetProperty("test_accuracy").GetSingle();
            Assert.True(global > 0.85, $"the global model reached {global:P2}");
            foreach (var c in clients)
            {
                Assert.True(c.Process.ExitCode == 0, c.Log.ToString());
                var s = c.Summary();
                Assert.Equal(global, s.GetProperty("test_accuracy").GetSingle()); // every client ends with the final global model
                Assert.True(s.GetProperty("rounds_trained").GetInt32() > 0);
            }
            Assert.True(clients[1].Summary().GetProperty("resumed").GetBoolean());
            string log = first.Log.ToString();
            foreach (var reason in new[] { "bad signature", "ends early", "finite", "over", $"an update for round {rounds + 5}" }) Assert.Contains(reason, log);
        }
        finally
        {
            foreach (var n in clients.Append(coordinator)) if (!n.Process.HasExited) n.Process.Kill();
        }
    }

    [Fact]
    public async Task Nodes_restarted_on_new_classes_keep_the_old_ones_with_replay_and_forget_them_without()
    {
        using var dir = new TempDir();
        string key = SharedKey(dir);
        const int count = 3;
        // three nodes learn classes 0-4, then are restarted from their checkpoints holding classes 5-9
        Task<(double, double, string)> Sequence(string name, params string[] memory)
        {
            var addresses = Enumerable.Range(0, count).Select(_ => $"127.0.0.1:{FreePort()}").ToArray();
            return TwoTasks(classes => (Enumerable.Range(0, count).Select(i => Run([
                "node", "--listen", addresses[i], "--peers", string.Join(',', addresses.Where((_, j) => j != i)), "--shard", $"{i}/{count}", "--classes", classes,
                "--key-file", key, "--checkpoint", dir.File($"{name}{i}.st"), "--period", "0.2", "--cycles", "50", "--linger", "2", "--json", .. memory])).ToArray(), null));
        }
        AssertReplayKeepsTheOldClasses(await Sequence("plain"), await Sequence("memory", "--replay", "200"), "may forget");
    }

    [Fact]
    public async Task FedAvg_clients_restarted_on_new_classes_keep_the_old_ones_in_the_global_model_with_replay_and_forget_them_without()
    {
        using var dir = new TempDir();
        string key = SharedKey(dir);
        const int count = 3, rounds = 25;
        // a coordinator and three clients learn classes 0-4; the coordinator resumes from its checkpoint for 25 rounds
        // more while the clients restart from theirs holding classes 5-9
        Task<(double, double, string)> Sequence(string name, params string[] memory)
        {
            string address = $"127.0.0.1:{FreePort()}";
            int task = 0;
            return TwoTasks(classes => (Enumerable.Range(0, count).Select(i => Run([
                    "node", "--protocol", "fedavg", "--coordinator", address, "--shard", $"{i}/{count}", "--classes", classes, "--key-file", key,
                    "--checkpoint", dir.File($"{name}{i}.st"), "--period", "0.1", "--json", .. memory])).ToArray(),
                Run("coordinator", "--listen", address, "--key-file", key, "--checkpoint", dir.File($"{name}.st"),
                    "--rounds", (++task * rounds).ToString(System.Globalization.CultureInfo.InvariantCulture), "--clients", "3", "--round-timeout", "3", "--linger", "3")));
        }
        AssertReplayKeepsTheOldClasses(await Sequence("plain"), await Sequence("memory", "--replay", "200"), "may make the global model forget");
    }

    /// <summary>
    /// Runs the devices (and coordinator) <paramref name="start"/> gives for classes 0-4, then for 5-9, each set until
    /// every process exits cleanly; returns the last devices' mean test accuracy on classes 0-4 and 5-9, and the first one's log.
    /// </summary>
    private static async Task<(double First, double Second, string Log)> TwoTasks(Func<string, (NodeProcess[] Devices, NodeProcess? Coordinator)> start)
    {
        var log = new System.Text.StringBuilder();
        NodeProcess[] devices = [];
        foreach (string classes in new[] { "0-4", "5-9" })
        {
            var (started, coordinator) = start(classes);
            devices = started;
            var all = coordinator is null ? devices : [.. devices, coordinator];
            foreach (var n in all) await n.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
            foreach (var n in all) Assert.True(n.Process.ExitCode == 0, n.Log.ToString());
            log.Append(devices[0].Log);
        }
        await Task.Delay(200);
        var summaries = devices.Select(n => n.Summary()).ToArray();
        return (summaries.Average(s => s.GetProperty("other_classes_accuracy").GetDouble()), summaries.Average(s => s.GetProperty("held_classes_accuracy").GetDouble()), log.ToString());
    }

    private static void AssertReplayKeepsTheOldClasses((double First, double Second, string Log) plain, (double First, double Second, string Log) remembered, string forgetWarning)
    {
        string all = $"without memory: classes 0-4 {plain.First:P1}, 5-9 {plain.Second:P1}; with replay: {remembered.First:P1}, {remembered.Second:P1}";
        Assert.Contains("new data", plain.Log);
        Assert.Contains(forgetWarning, plain.Log);
        Assert.Contains("memory: generation 2; replaying", remembered.Log);
        Assert.True(plain.Second > 0.85 && remembered.Second > 0.75, all); // both learnt the new classes (replay spends half of each batch on the old)
        Assert.True(plain.First < 0.5, all);                               // and the plain devices forgot the old ones
        Assert.True(remembered.First > plain.First + 0.5, all);
    }

    [Fact]
    public void A_node_refuses_a_bad_shard_a_short_key_and_a_foreign_checkpoint_in_one_line()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("short"), Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)));
        TestKeys.WriteSecret(dir.File("key"));
        var (exit, _, err) = CliProcess.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "8/8", "--key-file", dir.File("key"));
        Assert.Equal(1, exit);
        Assert.Contains("--shard", err);
        (exit, _, err) = CliProcess.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("short"));
        Assert.Equal(1, exit);
        Assert.Contains("at least 32", err);
        TensorFile.Write(dir.File("ck.st"), [("weights", Coldmind.Tensors.Tensor.Zeros(3))], new Dictionary<string, string> { ["coldmind.swarm.model_id"] = "1", ["coldmind.swarm.age"] = "0", ["coldmind.swarm.cycle"] = "0", ["coldmind.swarm.data"] = "0", ["coldmind.swarm.view"] = "[]" });
        (exit, _, err) = CliProcess.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--checkpoint", dir.File("ck.st"));
        Assert.Equal(1, exit);
        Assert.Contains("another model", err);
        Assert.Single(err.Trim().Split('\n'));
        var learner = LocalLearner.For(BuiltinData.Load("digits").Train, [32], 0); // the node's defaults
        SwarmCheckpoint.Write(dir.File("bad-age.st"), "swarm", learner, [("weights", learner.Initial()), ("answer", learner.Initial())],
            new Dictionary<string, string> { ["age"] = "-3", ["answer_weight"] = "0", ["cycle"] = "0", ["data"] = "0", ["view"] = "[]" });
        (exit, _, err) = CliProcess.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--checkpoint", dir.File("bad-age.st"));
        Assert.Equal(1, exit);
        Assert.Contains("bad age", err);
        SwarmCheckpoint.Write(dir.File("bad-quiet.st"), "swarm", learner, [("weights", learner.Initial()), ("answer", learner.Initial())],
            new Dictionary<string, string> { ["age"] = "0", ["answer_weight"] = "0", ["cycle"] = "0", ["data"] = "0", ["view"] = "[]", ["quiet"] = "-1" });
        (exit, _, err) = CliProcess.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--checkpoint", dir.File("bad-quiet.st"), "--walk", "3");
        Assert.Equal(1, exit);
        Assert.Contains("bad quiet", err);
        (exit, _, err) = CliProcess.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--walk", "3", "--tokens", "5");
        Assert.Equal(1, exit);
        Assert.Contains("--walk and --tokens", err);
        (exit, _, err) = CliProcess.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--pace", "1");
        Assert.Equal(1, exit);
        Assert.Contains("--pace paces walks", err);
        (exit, _, err) = CliProcess.Run("coordinator", "--listen", "127.0.0.1:0", "--key-file", dir.File("key"), "--checkpoint", dir.File("ck.st"));
        Assert.Equal(1, exit);
        Assert.Contains("not a coordinator checkpoint", err);
        (exit, _, err) = CliProcess.Run("node", "--protocol", "fedavg", "--shard", "0/8", "--key-file", dir.File("key"));
        Assert.Equal(1, exit);
        Assert.Contains("--coordinator", err);
        (exit, _, err) = CliProcess.Run("node", "--shard", "0/8", "--key-file", dir.File("key"));
        Assert.Equal(1, exit);
        Assert.Contains("--listen", err);
        var memory = new DeviceMemory(new MemoryOptions(Replay: 10), 64);
        memory.Begin(BuiltinData.Load("digits").Train, [0, 1, 2], learner, learner.Initial(), new Coldmind.Tensors.Rng(0));
        var (key, generation) = memory.Persist(dir.File("memory.st"), learner);
        SwarmCheckpoint.Write(dir.File("memory.st"), "swarm", learner, [("weights", learner.Initial()), ("answer", learner.Initial())],
            new Dictionary<string, string> { [key] = generation, ["age"] = "0", ["answer_weight"] = "0", ["cycle"] = "0", ["data"] = "0", ["view"] = "[]" });
        (exit, _, err) = CliProcess.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--checkpoint", dir.File("memory.st"));
        Assert.Equal(1, exit);
        Assert.Contains("holds a memory of earlier data", err);
        SwarmCheckpoint.Write(dir.File("client.st"), "fedavg_client", learner, [("global", learner.Initial())], // refused before its memory's file is looked for
            new Dictionary<string, string> { [key] = generation, ["round"] = "3", ["data"] = "0" });
        (exit, _, err) = CliProcess.Run("node", "--protocol", "fedavg", "--coordinator", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--checkpoint", dir.File("client.st"));
        Assert.Equal(1, exit);
        Assert.Contains("holds a memory of earlier data", err);
        (exit, _, err) = CliProcess.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--classes", "3-12");
        Assert.Equal(1, exit);
        Assert.Contains("--classes takes classes in 0..9", err);
        (exit, _, err) = CliProcess.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--ewc", "-1");
        Assert.Equal(1, exit);
        Assert.Contains("--ewc", err);
    }
}
