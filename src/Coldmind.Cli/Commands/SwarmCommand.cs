using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Data;
using Coldmind.Numerics;
using Coldmind.Reports;
using Coldmind.Swarm;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind swarm`: a deterministic simulation of learning across many devices, gossip (serverless) or FedAvg,
/// with non-IID data, churn, loss, slow nodes, limited links and compressed exchange; several protocols or codecs
/// are compared at the first run's byte budget.
/// </summary>
internal static class SwarmCommand
{
    public static Command Create()
    {
        var nodes = new Option<int>("--nodes") { Description = "devices in the swarm", DefaultValueFactory = _ => 100 };
        var protocol = new Option<string>("--protocol") { Description = "gossip, fedavg, or a comma list (e.g. gossip,fedavg) to compare at the same byte budget", DefaultValueFactory = _ => "gossip" };
        var data = new DataOptions();
        var partition = new Option<string>("--partition") { Description = "iid, dirichlet:α (non-IID; e.g. dirichlet:0.5) or classes:k", DefaultValueFactory = _ => "iid" };
        var churn = new Option<double>("--churn") { Description = "fraction of time a node is offline (exponential sessions)", DefaultValueFactory = _ => 0 };
        var session = new Option<double>("--session") { Description = "mean online session, seconds", DefaultValueFactory = _ => 100 };
        var churnTrace = new Option<string?>("--churn-trace") { Description = "online intervals instead of --churn: CSV lines node,from_seconds,until_seconds" };
        var rounds = new Option<int>("--rounds") { Description = "gossip cycles (one message a node a period) or FedAvg rounds (of each --task), for the first run unless --max-bytes sets a budget", DefaultValueFactory = _ => 50 };
        var maxBytes = new Option<long>("--max-bytes") { Description = "byte budget for every run, of each --task (default: what the first run sends)" };
        var task = new Option<string[]>("--task") { Description = "a task sequence: the classes every node holds, e.g. --task 0-4 --task 5-9 (each task runs --rounds; default: all classes)" };
        var replay = new Option<int>("--replay") { Description = "with --task: examples each node remembers of earlier tasks and replays beside each batch (0: none)", DefaultValueFactory = _ => 0 };
        var ewc = new Option<float>("--ewc") { Description = "with --task: EWC strength λ holding the weights that mattered for earlier tasks (0: none)", DefaultValueFactory = _ => 0 };
        var period = new Option<double>("--period") { Description = "gossip period, seconds", DefaultValueFactory = _ => 10 };
        var latency = new Option<double>("--latency") { Description = "one-way latency, seconds", DefaultValueFactory = _ => 0.05 };
        var loss = new Option<double>("--loss") { Description = "probability that a message is lost", DefaultValueFactory = _ => 0 };
        var bandwidth = new Option<double>("--bandwidth") { Description = "each node's link, bits per second", DefaultValueFactory = _ => 1e6 };
        var slow = new Option<double>("--slow") { Description = "fraction of slow nodes", DefaultValueFactory = _ => 0 };
        var slowFactor = new Option<double>("--slow-factor") { Description = "how many times slower a slow node is", DefaultValueFactory = _ => 5 };
        var localSteps = new Option<int>("--local-steps") { Description = "SGD steps a node takes per received model (gossip) or per round (FedAvg)", DefaultValueFactory = _ => 5 };
        var batch = new Option<int>("--batch") { Description = "local mini-batch size", DefaultValueFactory = _ => 16 };
        var lr = new Option<float>("--lr") { Description = "local SGD learning rate", DefaultValueFactory = _ => 0.1f };
        var compress = new Option<string>("--compress") { Description = "f32, int8, ternary, sign, topk:F or entropy:B (B bits a value), or a comma list to compare", DefaultValueFactory = _ => "f32" };
        var view = new Option<int>("--view") { Description = "gossip: peers in each node's partial view (Newscast)", DefaultValueFactory = _ => 20 };
        var clip = TrustOptions.Clip("bound on how far a received model may be from the receiver's (gossip) or on the norm of an update (FedAvg)");
        var ageLead = TrustOptions.AgeLead();
        var weightCap = TrustOptions.WeightCap();
        var dp = new TrustOptions.Dp();
        var secure = new Option<bool>("--secure-aggregation") { Description = "FedAvg: the coordinator sees only the sum of each round's updates (pairwise ECDH masks, drop-out recovery)" };
        var answerAverage = new Option<float>("--answer-average") { Description = "gossip: a node answers with a running average of the models it received, decaying by this a message (0: the last one)", DefaultValueFactory = _ => GossipOptions.DefaultAverage };
        var ownAge = new Option<float>("--own-age") { Description = "gossip: the share of its own age a receiver counts when it merges a model (1: the age-weighted average; lower takes more of a walk)", DefaultValueFactory = _ => 1 };
        var tokens = new Option<int>("--tokens") { Description = "gossip: a node saves up to this many unsent messages (its first wakes send nothing) and spends them forwarding models as they arrive (0: one message each period)", DefaultValueFactory = _ => 0 };
        var walk = new Option<int>("--walk") { Description = "gossip: models walk, each receiver merging, training on and passing on the one it got; a node that has heard none for this many periods starts one, and other wakes send only its view (0: every node sends its own model each period)", DefaultValueFactory = _ => 0 };
        var pace = new Option<double>("--pace") { Description = "walks: the most models a node sends a period; a walk waits its turn, and one that arrives meanwhile joins it (0: a node passes each model on as soon as it has trained on it)", DefaultValueFactory = _ => 0 };
        var aggregate = new Option<string>("--aggregate") { Description = "FedAvg: mean, median or trimmed:β", DefaultValueFactory = _ => "mean" };
        var clients = new Option<double>("--clients") { Description = "FedAvg: fraction of nodes sampled a round", DefaultValueFactory = _ => 0.1 };
        var downlink = new Option<string?>("--downlink") { Description = "FedAvg: the codec the global model travels in, whole (default: int8 when --compress is lossy, else f32)" };
        var prox = new Option<float>("--prox") { Description = "FedProx μ (0: FedAvg)", DefaultValueFactory = _ => 0 };
        var byzantine = new Option<double>("--byzantine") { Description = "fraction of nodes sending poisoned models", DefaultValueFactory = _ => 0 };
        var hidden = new Option<string>("--hidden") { Description = "hidden layer sizes, e.g. 32 or 64,32; none for softmax regression", DefaultValueFactory = _ => "32" };
        var evalNodes = new Option<int>("--eval-nodes") { Description = "nodes whose accuracy is measured (a seeded sample)", DefaultValueFactory = _ => 100 };
        var evalExamples = new Option<int>("--eval-examples") { Description = "test examples for the curve (the final numbers use the whole test set)", DefaultValueFactory = _ => 1000 };
        var seed = CommonOptions.Seed();
        var json = CommonOptions.Json();
        var report = new Option<string?>("--report") { Description = "write an HTML report: accuracy against time and bytes, spread over nodes" };
        var cmd = new Command("swarm", "Simulate learning across many devices: gossip (no server) or FedAvg, non-IID, churn, compression.")
        {
            nodes, protocol, partition, churn, session, churnTrace, rounds, maxBytes, task, replay, ewc, period, latency, loss, bandwidth, slow, slowFactor,
            localSteps, batch, lr, compress, view, clip, ageLead, weightCap, answerAverage, ownAge, tokens, walk, pace, aggregate, clients, downlink, prox, byzantine, hidden, evalNodes, evalExamples, seed, json, report,
        };
        foreach (var o in dp.All.Append(secure)) cmd.Options.Add(o);
        data.AddTo(cmd);
        cmd.SetAction(r =>
        {
            string dataSpec = r.GetValue(data.Data)!;
            int n = r.GetValue(nodes);
            var baseOptions = new SwarmOptions
            {
                Nodes = n,
                Partition = Partition.Parse(r.GetValue(partition)!),
                Churn = r.GetValue(churnTrace) is { } trace ? Churn.FromTrace(trace, n) : Churn.Sessions(r.GetValue(churn), r.GetValue(session)),
                Rounds = r.GetValue(rounds),
                MaxBytes = r.GetValue(maxBytes),
                Period = r.GetValue(period),
                Latency = r.GetValue(latency),
                LossRate = r.GetValue(loss),
                Bandwidth = r.GetValue(bandwidth),
                SlowFraction = r.GetValue(slow),
                SlowFactor = r.GetValue(slowFactor),
                Local = new LocalTraining(r.GetValue(localSteps), r.GetValue(batch), r.GetValue(lr)),
                ViewSize = r.GetValue(view),
                Aggregation = Aggregation.Parse(r.GetValue(aggregate)!, GossipOptions.ParseClip(r.GetValue(clip)!), r.GetValue(weightCap)),
                Clip = GossipOptions.ParseClip(r.GetValue(clip)!),
                AgeLead = r.GetValue(ageLead),
                AnswerAverage = r.GetValue(answerAverage),
                OwnAge = r.GetValue(ownAge),
                Tokens = r.GetValue(tokens),
                Walk = r.GetValue(walk),
                Pace = r.GetValue(pace),
                ClientFraction = r.GetValue(clients),
                Proximal = r.GetValue(prox),
                Byzantine = r.GetValue(byzantine),
                Hidden = CommonOptions.ParseHidden(r.GetValue(hidden)!),
                Seed = r.GetValue(seed),
                EvalNodes = r.GetValue(evalNodes),
                EvalExamples = r.GetValue(evalExamples),
                Memory = new MemoryOptions(r.GetValue(replay), r.GetValue(ewc)),
                Dp = dp.Read(r),
                SecureAggregation = r.GetValue(secure),
            };
            var splits = data.Load(r, baseOptions.Seed);
            baseOptions = baseOptions with { Tasks = (r.GetValue(task) ?? []).Select(t => CommonOptions.ParseClasses(t, splits.Train.Classes, "--task").Order().ToArray()).ToArray() };
            var protocols = r.GetValue(protocol)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            var codecs = r.GetValue(compress)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(ExchangeCodec.Parse).ToArray();
            var runs = protocols.SelectMany(p => codecs.Select(c => baseOptions with
            {
                Protocol = p.ToLowerInvariant(), Codec = c, Downlink = r.GetValue(downlink) is { } d ? FedAvgCoordinator.Downlink(d, c) : null,
            })).ToList();
            if (runs.Count == 0) throw new ColdmindException("--protocol and --compress must name at least one protocol and one codec.");
            runs.ForEach(o => o.Validate());
            bool quiet = r.GetValue(json);

            var results = new List<SwarmResult>();
            long budget = baseOptions.MaxBytes;
            foreach (var run in runs)
            {
                var options = run;
                if (results.Count > 0 && budget == 0) budget = results[0].BytesSent / Math.Max(1, baseOptions.Tasks.Count);
                if (budget > 0) options = WithBudget(options, budget, splits.Train);
                var sim = new SwarmSimulator(options, splits.Train, splits.Test);
                SwarmResult result = null!;
                string stage = $"{options.Protocol} {options.Codec}, {n} nodes";
                ProgressView.Run(quiet, progress => result = sim.Run(dataSpec, progress.As(stage)));
                results.Add(result);
            }

            if (r.GetValue(report) is { } reportPath) WriteReport(reportPath, results);
            if (quiet)
            {
                Console.WriteLine(results.Count == 1 ? JsonOutput.Serialize(ToJson(results[0])) : JsonOutput.Serialize(new { nodes = n, data = dataSpec, runs = results.Select(ToJson) }));
                return 0;
            }
            var table = new Table().Border(TableBorder.Rounded)
                .AddColumns("run", "mean test acc", "p10–p90 over nodes", "MB sent", "messages", "lost", "rounds", "simulated", "wall s");
            foreach (var c in table.Columns.Skip(1)) c.RightAligned();
            foreach (var x in results)
                table.AddRow(RunName(x), $"{x.FinalMeanAccuracy:P2}", $"{x.FinalP10:P1}–{x.FinalP90:P1}", (x.BytesSent / 1e6).ToString("F2", CultureInfo.InvariantCulture),
                    x.Messages.ToString(CultureInfo.InvariantCulture), x.MessagesLost.ToString(CultureInfo.InvariantCulture), x.RoundsDone.ToString(CultureInfo.InvariantCulture),
                    $"{x.SimulatedSeconds / 60:F1} min", x.WallSeconds.ToString("F1", CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
            if (baseOptions.Tasks.Count > 0) AnsiConsole.Write(TaskTable(results));
            var first = results[0];
            AnsiConsole.MarkupLineInterpolated($"[grey]{n} nodes on {dataSpec} ({first.Options.Partition}, churn {first.Options.Churn.Description}), a model of {first.ParameterCount} parameters; accuracy of {first.FinalNodeAccuracies.Length} sampled nodes on the whole test set. State a node: {first.StateBytesPerNode / 1024.0:F1} KiB (model, view, data indices); managed memory of the run: {first.ManagedBytesPerNode / 1024.0:F1} KiB a node.[/]");
            foreach (var x in results.Where(x => x.Epsilon != null))
                AnsiConsole.MarkupLineInterpolated($"[grey]{RunName(x)}: client-level DP (ε, δ) = ({x.Epsilon:F2}, {x.Options.Dp!.Delta:G2}) after {x.RoundsDone} rounds at σ = {x.Options.Dp.NoiseMultiplier:G3}, clip {x.Options.Dp.Clip:G3}.[/]");
                        if (results.Count > 1) AnsiConsole.MarkupLineInterpolated($"[grey]Runs after the first stop at the first run's byte budget ({results[0].BytesSent / 1e6:F2} MB{(baseOptions.Tasks.Count > 1 ? ", shared equally by the tasks" : "")}) unless --max-bytes sets one.[/]");
            return 0;
        });
        return cmd;
    }

    /// <summary>Enough rounds for the run to spend <paramref name="budget"/> bytes (churn, loss and slow nodes counted), and the budget as its stop.</summary>
    private static SwarmOptions WithBudget(SwarmOptions o, long budget, Dataset train)
    {
        var learner = LocalLearner.For(train, o.Hidden, o.Seed);
        var zeros = new float[learner.ParameterCount];
        var view = Enumerable.Range(0, o.ViewSize + 1).Select(i => new PeerDescriptor("n00000", 0)).ToArray();
        int Bytes(ExchangeCodec codec) => SwarmMessage.Encode(SwarmMessage.Type.Gossip, 0, "n00000", 0, 0, view, codec, zeros).Length;
        int viewBytes = SwarmMessage.Encode(SwarmMessage.Type.View, 0, "n00000", 0, 0, view, ExchangeCodec.Float32, []).Length;
        double activity = (1 - (double.IsNaN(o.Churn.OfflineFraction) ? 0 : o.Churn.OfflineFraction)) * (1 - o.LossRate);
        // walks: at least a view message a node (how many models walk is up to the swarm)
        double perRound = o.Protocol == "gossip"
            ? o.Nodes * (o.Walk > 0 ? viewBytes + HttpFraming.Gossip : Bytes(o.Codec)) * (1 - o.SlowFraction * (1 - 1 / o.SlowFactor)) * activity
            : Math.Max(1, Math.Round(o.ClientFraction * o.Nodes)) * (Bytes(o.GlobalCodec) + Bytes(o.Codec) * activity);
        // estimates only: the budget stops the run, the rounds leave room for it
        return o with { MaxBytes = budget, Rounds = (int)Math.Min(1_000_000, Math.Ceiling(1.5 * budget / Math.Max(1, perRound)) + 2) };
    }

    /// <summary>A row a run and a task done: the mean accuracy on each task's classes then.</summary>
    private static Table TaskTable(List<SwarmResult> results)
    {
        var tasks = results[0].Options.Tasks.Select(Classes).ToArray();
        var table = new Table().Border(TableBorder.Rounded).Title("accuracy on each task's classes, after each task").AddColumn("run").AddColumn("after task");
        foreach (var t in tasks) table.AddColumn(new TableColumn($"classes {t}").RightAligned());
        foreach (var (x, i, row) in TaskRows(results)) table.AddRow([i == 0 ? Markup.Escape(RunName(x)) : "", tasks[i], .. row]);
        return table;
    }

    private static IEnumerable<(SwarmResult Run, int Task, string[] Accuracies)> TaskRows(List<SwarmResult> results) =>
        results.SelectMany(x => x.TaskAccuracy.Select((row, i) => (x, i, row.Select(a => $"{a:P2}").ToArray())));

    /// <summary>A sorted class set as ranges: 0-4, or 0,2,4.</summary>
    private static string Classes(int[] classes) => string.Join(",", classes
        .Select((c, i) => (c, run: c - i)).GroupBy(x => x.run)
        .Select(g => g.Count() == 1 ? $"{g.First().c}" : $"{g.First().c}-{g.Last().c}"));

    private static string RunName(SwarmResult x) => x.Options.Protocol == "fedavg"
        ? $"fedavg{(x.Options.Proximal > 0 ? $" (FedProx μ={x.Options.Proximal:G3})" : "")}, {x.Options.Codec}{(x.Options.Downlink is { } d ? $", global model {d}" : "")}"
        : $"gossip{(x.Options.Walk > 0 ? $" (walks, {x.Options.Walk} quiet periods{(x.Options.Pace > 0 ? $", {x.Options.Pace:G3} models a period" : "")}{(x.Options.OwnAge < 1 ? $", own age ×{x.Options.OwnAge:G3}" : "")})" : x.Options.Tokens > 0 ? $" ({x.Options.Tokens} tokens)" : "")}, {x.Options.Codec}";

    private static object ToJson(SwarmResult x) => new
    {
        protocol = x.Options.Protocol,
        compress = x.Options.Codec.ToString(),
        downlink = x.Options.Protocol == "fedavg" ? x.Options.GlobalCodec.ToString() : null,
        nodes = x.Options.Nodes,
        data = x.Data,
        partition = x.Options.Partition.ToString(),
        churn = x.Options.Churn.Description,
        tokens = x.Options.Tokens,
        walk = x.Options.Walk,
        own_age = x.Options.OwnAge,
        pace = x.Options.Pace,
        parameters = x.ParameterCount,
        final_mean_accuracy = x.FinalMeanAccuracy,
        final_p10_accuracy = x.FinalP10,
        final_p90_accuracy = x.FinalP90,
        tasks = x.Options.Tasks,
        replay = x.Options.Memory.Replay,
        ewc = x.Options.Memory.Ewc,
        task_accuracy = x.TaskAccuracy,
        evaluated_nodes = x.FinalNodeAccuracies.Length,
        bytes_sent = x.BytesSent,
        messages = x.Messages,
        messages_lost = x.MessagesLost,
        messages_rejected = x.MessagesRejected,
        connections_refused = x.ConnectionsRefused,
        messages_forwarded = x.MessagesForwarded,
        walks_started = x.WalksStarted,
        walks_joined = x.WalksJoined,
        rounds = x.RoundsDone,
        simulated_seconds = x.SimulatedSeconds,
        wall_seconds = x.WallSeconds,
        state_bytes_per_node = x.StateBytesPerNode,
        managed_bytes_per_node = x.ManagedBytesPerNode,
        secure_aggregation = x.Options.SecureAggregation,
        secagg_bytes = x.SecAggBytes,
        secagg_seconds = x.SecAggSeconds,
        epsilon = x.Epsilon,
        delta = x.Options.Dp?.Delta,
        noise_multiplier = x.Options.Dp?.NoiseMultiplier,
        dp_clip = x.Options.Dp?.Clip,
        curve = x.Curve.Select(p => new { seconds = p.Seconds, bytes = p.Bytes, round = p.Round, mean_accuracy = p.Mean, p10 = p.P10, p90 = p.P90, online = p.OnlineFraction, epsilon = p.Epsilon }),
    };

    private static void WriteReport(string path, List<SwarmResult> results)
    {
        var first = results[0];
        var page = new HtmlReport($"Swarm: {first.Options.Nodes} nodes on {first.Data}")
            .Paragraph($"Partition {first.Options.Partition}; churn {first.Options.Churn.Description}; loss {first.Options.LossRate:P0}; a model of {first.ParameterCount} parameters. " +
                       $"Mean accuracy of {first.FinalNodeAccuracies.Length} sampled nodes (curves: on {first.Options.EvalExamples} test examples; table: on the whole test set).")
            .Table(["run", "mean test accuracy", "p10", "p90", "MB sent", "rounds", "simulated minutes"],
                results.Select(x => (IReadOnlyList<string>)[RunName(x), $"{x.FinalMeanAccuracy:P2}", $"{x.FinalP10:P1}", $"{x.FinalP90:P1}",
                    (x.BytesSent / 1e6).ToString("F2", CultureInfo.InvariantCulture), x.RoundsDone.ToString(CultureInfo.InvariantCulture), (x.SimulatedSeconds / 60).ToString("F1", CultureInfo.InvariantCulture)]));
        var byTime = new LineChart("Mean accuracy against time", "simulated minutes", "test accuracy");
        var byBytes = new LineChart("Mean accuracy against bytes sent", "MB sent", "test accuracy");
        var spread = new LineChart("Spread over nodes: 10th and 90th percentile", "MB sent", "test accuracy");
        var final = new LineChart("Final accuracy of each sampled node, sorted", "node rank", "test accuracy");
        foreach (var x in results)
        {
            string name = RunName(x);
            byTime.Add(new Series(name, x.Curve.Select(p => p.Seconds / 60).ToList(), x.Curve.Select(p => (double)p.Mean).ToList()));
            byBytes.Add(new Series(name, x.Curve.Select(p => p.Bytes / 1e6).ToList(), x.Curve.Select(p => (double)p.Mean).ToList()));
            spread.Add(new Series(name + " p10", x.Curve.Select(p => p.Bytes / 1e6).ToList(), x.Curve.Select(p => (double)p.P10).ToList()));
            spread.Add(new Series(name + " p90", x.Curve.Select(p => p.Bytes / 1e6).ToList(), x.Curve.Select(p => (double)p.P90).ToList()));
            var sorted = x.FinalNodeAccuracies.Order().Select(a => (double)a).ToList();
            final.Add(new Series(name, Enumerable.Range(1, sorted.Count).Select(i => (double)i).ToList(), sorted));
        }
        if (first.Options.Tasks.Count > 0)
            page.Paragraph("A task sequence: accuracy on each task's test classes once each task is done (what a later row lost on an earlier task was forgotten).")
                .Table(["run", "after task", .. first.Options.Tasks.Select(t => $"classes {Classes(t)}")],
                    TaskRows(results).Select(r => (IReadOnlyList<string>)[RunName(r.Run), Classes(r.Run.Options.Tasks[r.Task]), .. r.Accuracies]));
        page.Chart(byTime).Chart(byBytes).Chart(spread).Chart(final).Write(path);
    }
}
