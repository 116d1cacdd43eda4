using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Data;
using Coldmind.Network;
using Coldmind.Swarm;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind coordinator`: the FedAvg baseline's server over HTTP; devices run `coldmind node --protocol fedavg`.</summary>
internal static class CoordinatorCommand
{
    public static Command Create()
    {
        var listen = new Option<string>("--listen") { Description = "HOST:PORT the coordinator listens on", Required = true };
        var data = new DataOptions();
        var keyFile = new Option<string>("--key-file") { Description = "the swarm secret (`coldmind key new`); every message is signed with it, each client's key derived from it", Required = true };
        var checkpoint = new Option<string?>("--checkpoint") { Description = "file the global model and its round are saved to after every round, and resumed from" };
        var rounds = new Option<int>("--rounds") { Description = "rounds to run", DefaultValueFactory = _ => 30 };
        var clients = new Option<int>("--clients") { Description = "clients in a round: the first to check in", DefaultValueFactory = _ => 4 };
        var roundTimeout = new Option<double>("--round-timeout") { Description = "seconds after the first client joins a round before it closes with what arrived", DefaultValueFactory = _ => 10 };
        var aggregate = new Option<string>("--aggregate") { Description = "mean, median or trimmed:β", DefaultValueFactory = _ => "mean" };
        var clip = TrustOptions.Clip("bound on the norm of each update");
        var weightCap = TrustOptions.WeightCap();
        var dp = new TrustOptions.Dp();
        var population = new Option<int>("--population") { Description = "DP: how many devices the rounds sample from (the sampling rate is --clients over it)" };
        var compress = new Option<string>("--compress") { Description = "the clients' codec: f32 sends the global model as f32, any lossy codec as int8 unless --downlink says otherwise", DefaultValueFactory = _ => "f32" };
        var downlink = new Option<string?>("--downlink") { Description = "the codec the global model travels in (f32, int8, ternary, sign or entropy:B)" };
        var linger = new Option<double>("--linger") { Description = "seconds to keep serving the final model", DefaultValueFactory = _ => 5 };
        var hidden = new Option<string>("--hidden") { Description = "hidden layer sizes (the same as on every client), or none", DefaultValueFactory = _ => "32" };
        var maxMessage = new Option<int>("--max-message-bytes") { Description = "larger updates are refused (default: an f32 model, with room)" };
        var seed = CommonOptions.Seed();
        var json = CommonOptions.Json();
        var cmd = new Command("coordinator", "Run the FedAvg baseline's coordinator over HTTP: rounds of clients that check in, train and send updates.")
            { listen, keyFile, checkpoint, rounds, clients, roundTimeout, aggregate, clip, weightCap, compress, downlink, linger, hidden, maxMessage, seed, json };
        foreach (var o in dp.All.Append(population)) cmd.Options.Add(o);
        data.AddTo(cmd);
        cmd.SetAction(async r =>
        {
            using var auth = MessageAuth.FromKeyFile(r.GetValue(keyFile)!, r.GetValue(listen)!);
            if (!(r.GetValue(linger) >= 0)) throw new ColdmindException("--linger must not be negative.");
            ulong s = r.GetValue(seed);
            var splits = data.Load(r, s);
            var learner = LocalLearner.For(splits.Train, CommonOptions.ParseHidden(r.GetValue(hidden)!), s);
            int maxBytes = r.GetValue(maxMessage) is > 0 and var m ? m : learner.ParameterCount * 4 + 4096;
            var options = new CoordinatorOptions(r.GetValue(listen)!, r.GetValue(rounds), r.GetValue(clients), TimeSpan.FromSeconds(r.GetValue(roundTimeout)),
                Aggregation.Parse(r.GetValue(aggregate)!, GossipOptions.ParseClip(r.GetValue(clip)!), r.GetValue(weightCap)), FedAvgCoordinator.Downlink(r.GetValue(downlink), ExchangeCodec.Parse(r.GetValue(compress)!)), r.GetValue(checkpoint), maxBytes, TimeSpan.FromSeconds(r.GetValue(linger)),
                dp.Read(r), r.GetValue(population));
            if (options.Dp != null && options.Population < 1) throw new ColdmindException("--dp needs --population, the number of devices the rounds sample from.");
            var log = (string line) => Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} coordinator {line}");
            await using var server = await FedAvgServer.StartAsync(options, learner, auth, log);
            log($"listening on {options.Listen}: {options.Rounds} rounds of {options.ClientsPerRound} clients, {learner.ParameterCount} parameters, aggregation {options.Aggregation}");
            var summary = await server.RunAsync(splits.Test);
            if (r.GetValue(json))
                Console.WriteLine(JsonOutput.Serialize(new
                {
                    test_accuracy = summary.TestAccuracy, rounds = summary.Rounds, updates = summary.Updates, rejected = summary.Rejected,
                    bytes_sent = summary.BytesSent, bytes_received = summary.BytesReceived, resumed = summary.Resumed,
                    epsilon = summary.Epsilon, delta = options.Dp?.Delta,
                }));
            else
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"coordinator: test accuracy {summary.TestAccuracy:P2} after {summary.Rounds} rounds; {summary.Updates} updates, {summary.Rejected} rejected; sent {summary.BytesSent / 1e6:F2} MB, received {summary.BytesReceived / 1e6:F2} MB{(summary.Resumed ? "; resumed from its checkpoint" : "")}{(summary.Epsilon is { } e ? $"; client-level DP (ε, δ) = ({e:F2}, {options.Dp!.Delta:G2})" : "")}"));
            return 0;
        });
        return cmd;
    }
}
