using Xunit;
using Coldmind.Data;
using Coldmind.Swarm;

namespace Coldmind.Tests;

public class SwarmSimulatorTests
{
    private static readonly DataSplits Digits = BuiltinData.Load("digits");

    private static SwarmResult Simulate(SwarmOptions o) => new SwarmSimulator(o, Digits.Train, Digits.Test).Run("digits");

    private static readonly SwarmOptions Small = new() { Nodes = 20, Rounds = 40, Local = new LocalTraining(5, 16, 0.2f), EvalNodes = 20, EvalExamples = 200 };

    [Fact]
    public void The_same_seed_gives_the_same_run()
    {
        var a = Simulate(Small with { Churn = Churn.Sessions(0.3, 50), LossRate = 0.1, Codec = ExchangeCodec.Parse("int8") });
        var b = Simulate(Small with { Churn = Churn.Sessions(0.3, 50), LossRate = 0.1, Codec = ExchangeCodec.Parse("int8") });
        Assert.Equal(a.BytesSent, b.BytesSent);
        Assert.Equal(a.FinalNodeAccuracies, b.FinalNodeAccuracies);
        Assert.Equal(a.Curve.Select(p => p.Mean), b.Curve.Select(p => p.Mean));
        Assert.True(a.MessagesLost > 0);
    }

    [Theory]
    [InlineData("gossip", "iid", 0.0, 0.88)]
    [InlineData("fedavg", "iid", 0.0, 0.88)]
    [InlineData("gossip", "dirichlet:0.5", 0.5, 0.65)]
    [InlineData("fedavg", "dirichlet:0.5", 0.5, 0.65)]
    public void Both_protocols_learn_digits_across_nodes_with_non_iid_data_and_churn(string protocol, string partition, double churn, double floor)
    {
        var r = Simulate(Small with { Protocol = protocol, Partition = Partition.Parse(partition), Churn = Churn.Sessions(churn, 100), Rounds = protocol == "gossip" ? 60 * (churn > 0 ? 2 : 1) : 150 });
        Assert.True(r.FinalMeanAccuracy > floor, $"{protocol} {partition} churn {churn}: {r.FinalMeanAccuracy:P2}");
        Assert.True(r.Curve[0].Mean < 0.3, "the nodes start untrained");
        Assert.True(r.BytesSent > 0 && r.Messages > 0);
    }

    [Fact]
    public void A_gossip_message_to_an_offline_peer_is_refused_before_it_is_sent_and_every_sent_byte_includes_its_http_framing()
    {
        var o = Small with { Churn = Churn.Sessions(0.5, 50), Codec = ExchangeCodec.Parse("int8") };
        var r = Simulate(o);
        Assert.True(r.ConnectionsRefused > 0);
        // messages lost are those whose receiver went offline in flight: far fewer than the refused connections
        Assert.True(r.MessagesLost < r.ConnectionsRefused / 4, $"{r.MessagesLost} lost, {r.ConnectionsRefused} refused");
        var learner = LocalLearner.For(Digits.Train, o.Hidden, o.Seed);
        int body = SwarmMessage.Encode(SwarmMessage.Type.Gossip, 0, "n0", 0, 0, [], o.Codec, new float[learner.ParameterCount]).Length;
        double perMessage = (double)r.BytesSent / r.Messages;
        Assert.InRange(perMessage, body + HttpFraming.Gossip, body + HttpFraming.Gossip + (o.ViewSize + 1) * 12);
    }

    [Fact]
    public void Int8_exchange_sends_a_quarter_of_the_bytes_and_learns_as_well()
    {
        var f32 = Simulate(Small);
        var int8 = Simulate(Small with { Codec = ExchangeCodec.Parse("int8") });
        Assert.InRange((double)int8.BytesSent / f32.BytesSent, 0.25, 0.32);
        Assert.InRange(int8.FinalMeanAccuracy, f32.FinalMeanAccuracy - 0.03, 1);
    }

    [Fact]
    public void Entropy_coded_exchange_learns_in_both_protocols()
    {
        var entropy = ExchangeCodec.Parse("entropy:1.875");
        var gossip = Simulate(Small with { Codec = entropy, Walk = 4 });
        var fedavg = Simulate(Small with { Protocol = "fedavg", Codec = entropy, Rounds = 150 });
        Assert.True(gossip.FinalMeanAccuracy > 0.88 && fedavg.FinalMeanAccuracy > 0.88, $"walks {gossip.FinalMeanAccuracy:P2}, FedAvg {fedavg.FinalMeanAccuracy:P2}");
        Assert.Equal(0, gossip.MessagesRejected + fedavg.MessagesRejected);
    }

    [Fact]
    public void FedAvg_sends_the_global_model_in_the_downlink_codec_it_is_given()
    {
        var o = Small with { Protocol = "fedavg", Codec = ExchangeCodec.Parse("ternary"), Rounds = 60 };
        var int8 = Simulate(o);
        var entropy = Simulate(o with { Downlink = FedAvgCoordinator.Downlink("entropy:4", o.Codec) });
        Assert.Equal("int8", o.GlobalCodec.ToString());
        // a round sends ten global models and ten updates: int8 is 8.25 bits a value, entropy:4 at most 4 and its table
        Assert.InRange((double)entropy.BytesSent / int8.BytesSent, 0.4, 0.75);
        Assert.True(entropy.FinalMeanAccuracy > int8.FinalMeanAccuracy - 0.03, $"{entropy.FinalMeanAccuracy:P2} against int8's {int8.FinalMeanAccuracy:P2}");
        Assert.Throws<ColdmindException>(() => FedAvgCoordinator.Downlink("topk:0.1", o.Codec));
    }

    [Fact]
    public void A_median_coordinator_survives_byzantine_clients_that_wreck_the_mean()
    {
        var attacked = Small with { Protocol = "fedavg", Rounds = 100, Byzantine = 0.2, ClientFraction = 0.5 };
        var mean = Simulate(attacked);
        var median = Simulate(attacked with { Aggregation = Aggregation.Parse("median", 0) });
        Assert.True(median.FinalMeanAccuracy > 0.85, $"median: {median.FinalMeanAccuracy:P2}");
        Assert.True(mean.FinalMeanAccuracy < median.FinalMeanAccuracy - 0.2, $"mean {mean.FinalMeanAccuracy:P2} vs median {median.FinalMeanAccuracy:P2}");
    }

    [Fact]
    public void Gossip_with_a_token_account_learns_and_sends_no_more_than_a_message_a_node_a_period()
    {
        var o = Small with { Partition = Partition.Parse("dirichlet:0.5"), Rounds = 60 };
        var plain = Simulate(o);
        var tokens = Simulate(o with { Tokens = 5 });
        Assert.True(tokens.FinalMeanAccuracy > 0.8, $"with tokens: {tokens.FinalMeanAccuracy:P2}");
        Assert.InRange(tokens.Messages, o.Nodes * (o.Rounds - 5 - 1), o.Nodes * o.Rounds);
        Assert.InRange(plain.Messages, o.Nodes * (o.Rounds - 1), o.Nodes * o.Rounds);
        // a wake sends only from a full account, so most of the traffic is models forwarded on arrival
        Assert.InRange(tokens.MessagesForwarded, tokens.Messages / 2, tokens.Messages);
        Assert.Equal(0, plain.MessagesForwarded);
    }

    [Fact]
    public void Walks_learn_and_outlive_churn_and_loss_because_quiet_nodes_start_new_ones()
    {
        var o = Small with { Partition = Partition.Parse("dirichlet:0.5"), Churn = Churn.Sessions(0.5, 50), LossRate = 0.2, Rounds = 120, Walk = 4 };
        var r = Simulate(o);
        Assert.True(r.FinalMeanAccuracy > 0.65, $"walks with churn and loss: {r.FinalMeanAccuracy:P2}");
        // a fifth of the messages is lost and half the nodes are away at any time: walks die young, and quiet nodes
        // keep starting them to the end
        var half = Simulate(o with { Rounds = 60 });
        Assert.True(half.WalksStarted > 5 && r.WalksStarted > 1.5 * half.WalksStarted, $"{half.WalksStarted} walks started in 60 periods, {r.WalksStarted} in 120");
        Assert.True(r.Curve[^1].Mean > half.Curve[^1].Mean, "the second half still learns");
        Assert.True(r.MessagesForwarded > r.WalksStarted, $"{r.MessagesForwarded} hops for {r.WalksStarted} walks");
        // on reliable links a few walks carry the learning, each many hops long
        var calm = Simulate(o with { Churn = Churn.None, LossRate = 0, Rounds = 20 });
        Assert.InRange(calm.WalksStarted, 1, o.Nodes);
        Assert.True(calm.MessagesForwarded > 20 * calm.WalksStarted, $"{calm.MessagesForwarded} hops for {calm.WalksStarted} walks");
        Assert.True(calm.FinalMeanAccuracy > 0.8, $"walks without churn: {calm.FinalMeanAccuracy:P2}");
        Assert.Equal(0, Simulate(Small).WalksStarted);
    }

    [Fact]
    public void A_pace_bounds_the_models_a_node_sends_a_period_and_paced_walks_still_learn()
    {
        var o = Small with { Partition = Partition.Parse("dirichlet:0.5"), Rounds = 30, Walk = 4 };
        var free = Simulate(o);
        var paced = Simulate(o with { Pace = 1 });
        // at one model a period, a node passes on at most one model a period; unpaced, a walk hops as soon as it is trained
        int bound = o.Nodes * (o.Rounds + 1);
        Assert.InRange(paced.MessagesForwarded, 1, bound);
        Assert.True(free.MessagesForwarded > bound, $"{free.MessagesForwarded} models passed on unpaced in {o.Rounds} periods of {o.Nodes} nodes");
        Assert.True(paced.WalksJoined > 0, "walks meet at busy nodes and go on as one");
        Assert.True(paced.FinalMeanAccuracy > 0.8, $"paced walks: {paced.FinalMeanAccuracy:P2}");
    }

    [Fact]
    public void A_byte_budget_stops_the_run()
    {
        var r = Simulate(Small with { MaxBytes = 200_000 });
        Assert.InRange(r.BytesSent, 200_000, 200_000 + 2 * 10_000);
        Assert.True(r.RoundsDone < Small.Rounds);
    }

    [Theory]
    [InlineData("gossip", 100)]
    [InlineData("fedavg", 40)]
    public void A_swarm_learning_a_task_sequence_forgets_the_first_task_without_a_memory_and_keeps_it_with_replay(string protocol, int rounds)
    {
        var o = Small with { Protocol = protocol, Rounds = rounds, Partition = Partition.Parse("dirichlet:0.5"), Tasks = [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]] };
        var plain = Simulate(o);
        var replay = Simulate(o with { Memory = new MemoryOptions(Replay: 50) });
        foreach (var r in new[] { plain, replay })
        {
            Assert.Equal(2, r.TaskAccuracy.Count);
            Assert.True(r.TaskAccuracy[0][0] > 0.85, $"{protocol}: task 1 learnt to {r.TaskAccuracy[0][0]:P1}");
            Assert.True(r.TaskAccuracy[0][1] < 0.05, "nothing of task 2 is known before it is learnt");
            Assert.True(r.TaskAccuracy[1][1] > 0.75, $"{protocol}: task 2 learnt to {r.TaskAccuracy[1][1]:P1}");
            Assert.Equal(2 * rounds, r.RoundsDone);
        }
        Assert.Equal(plain.TaskAccuracy[0], replay.TaskAccuracy[0]); // the memory does nothing until there is an earlier task
        Assert.True(plain.TaskAccuracy[1][0] < 0.2, $"{protocol} without memory keeps {plain.TaskAccuracy[1][0]:P1} of task 1");
        Assert.True(replay.TaskAccuracy[1][0] > 0.7, $"{protocol} with replay keeps {replay.TaskAccuracy[1][0]:P1} of task 1");
        Assert.True(replay.StateBytesPerNode > plain.StateBytesPerNode + 36 * 64 * 4, "the remembered examples are a node's state");
    }

    [Fact]
    public void Each_task_of_a_sequence_has_the_byte_budget_and_a_memory_needs_a_sequence()
    {
        var r = Simulate(Small with { MaxBytes = 100_000, Tasks = [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]] });
        Assert.Equal(3, r.TaskAccuracy.Count);
        Assert.InRange(r.BytesSent, 300_000, 300_000 + 3 * 2 * 10_000);
        Assert.Contains("task sequence", Assert.Throws<ColdmindException>(() => Simulate(Small with { Memory = new MemoryOptions(Replay: 10) })).Message);
        Assert.Contains("names class 10", Assert.Throws<ColdmindException>(() => Simulate(Small with { Tasks = [[0, 1], [5, 10]] })).Message);
    }

    [Fact]
    public void Swarm_cli_prints_the_promised_json_and_refuses_bad_flags()
    {
        using var dir = new TempDir();
        var (exit, stdout, stderr) = CliProcess.Run("swarm", "--nodes", "12", "--rounds", "10", "--protocol", "gossip,fedavg", "--lr", "0.2", "--json", "--report", dir.File("r.html"));
        Assert.True(exit == 0, stderr);
        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.Equal(12, json.RootElement.GetProperty("nodes").GetInt32());
        var runs = json.RootElement.GetProperty("runs").EnumerateArray().ToArray();
        Assert.Equal(2, runs.Length);
        foreach (var run in runs)
        {
            Assert.InRange(run.GetProperty("final_mean_accuracy").GetDouble(), 0.3, 1);
            Assert.True(run.GetProperty("bytes_sent").GetInt64() > 0);
        }
        // the second run stops at the first run's byte budget
        Assert.InRange(runs[1].GetProperty("bytes_sent").GetInt64(), runs[0].GetProperty("bytes_sent").GetInt64(), runs[0].GetProperty("bytes_sent").GetInt64() * 11 / 10);
        Assert.Contains("<svg", File.ReadAllText(dir.File("r.html")));

        (exit, stdout, stderr) = CliProcess.Run("swarm", "--nodes", "12", "--rounds", "10", "--task", "0-4", "--task", "5-9", "--replay", "20", "--json", "--report", dir.File("t.html"));
        Assert.True(exit == 0, stderr);
        using var tasks = System.Text.Json.JsonDocument.Parse(stdout);
        var matrix = tasks.RootElement.GetProperty("task_accuracy").EnumerateArray().Select(row => row.EnumerateArray().Select(a => a.GetDouble()).ToArray()).ToArray();
        Assert.Equal(2, matrix.Length);
        Assert.All(matrix, row => Assert.Equal(2, row.Length));
        Assert.Equal(20, tasks.RootElement.GetProperty("replay").GetInt32());
        Assert.Contains("classes 5-9", File.ReadAllText(dir.File("t.html")));

        (exit, stdout, stderr) = CliProcess.Run("swarm", "--nodes", "12", "--rounds", "10", "--walk", "3", "--pace", "2", "--json");
        Assert.True(exit == 0, stderr);
        using var walks = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.True(walks.RootElement.GetProperty("walks_started").GetInt64() > 0);
        Assert.Equal(System.Text.Json.JsonValueKind.Number, walks.RootElement.GetProperty("walks_joined").ValueKind);
        Assert.Equal(3, walks.RootElement.GetProperty("walk").GetInt32());
        Assert.Equal(2, walks.RootElement.GetProperty("pace").GetDouble());

        foreach (var (args, expected) in new (string[], string)[]
        {
            (["--nodes", "1"], "--nodes"), (["--partition", "dirichlet:0"], "--partition"), (["--compress", "topk:2"], "--compress"),
            (["--protocol", "raft"], "--protocol"), (["--churn", "1"], "--churn"), (["--aggregate", "trimmed:0.7"], "--aggregate"),
            (["--task", "0-4", "--task", "5-12"], "--task"), (["--replay", "20"], "--replay"), (["--task", "0-4", "--task", "5-9", "--ewc", "-1"], "--ewc"),
            (["--walk", "-2"], "--walk"), (["--walk", "3", "--tokens", "5"], "--walk"), (["--pace", "2"], "--pace"), (["--walk", "3", "--pace", "-1"], "--pace"),
        })
        {
            var (badExit, _, badErr) = CliProcess.Run(["swarm", .. args]);
            Assert.Equal(1, badExit);
            Assert.Contains(expected, badErr);
            Assert.Single(badErr.Trim().Split('\n'));
        }
    }
}
