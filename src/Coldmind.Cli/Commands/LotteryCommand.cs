using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Data;
using Coldmind.Nn;
using Coldmind.Reports;
using Coldmind.Shrink;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind lottery`: the lottery-ticket experiment (Frankle and Carbin 2019) on an MLP: iterative magnitude
/// pruning with rewinding, and for each round the same mask trained from a random re-initialisation, over
/// several seeds; test accuracy against the fraction of weights remaining.
/// </summary>
internal static class LotteryCommand
{
    public static Command Create()
    {
        var data = new DataOptions();
        var hidden = new Option<string>("--hidden") { DefaultValueFactory = _ => "300,100" };
        var rounds = new Option<int>("--rounds") { DefaultValueFactory = _ => 5 };
        var rate = new Option<double>("--prune-rate") { DefaultValueFactory = _ => 0.2 };
        var prune = new Option<string>("--prune") { Description = "layer (each layer, output at half rate, as the paper) or global", DefaultValueFactory = _ => "layer" };
        var rewind = new Option<int>("--rewind") { Description = "training step the survivors are reset to (0: the initialisation)", DefaultValueFactory = _ => 0 };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 10 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 60 };
        var lr = new Option<float>("--lr") { DefaultValueFactory = _ => 1.2e-3f };
        var seeds = new Option<int>("--seeds") { DefaultValueFactory = _ => 3 };
        var control = new Option<bool>("--no-control") { Description = "skip the random re-initialisations" };
        var threads = CommonOptions.Threads();
        var report = new Option<string?>("--report") { Description = "write the accuracy-vs-weights plot as HTML" };
        var json = CommonOptions.Json();
        var cmd = new Command("lottery", "Lottery-ticket experiment: winning tickets against random re-initialisation, several seeds.")
            { hidden, rounds, rate, prune, rewind, epochs, batch, lr, seeds, control, threads, report, json };
        data.AddTo(cmd);
        cmd.SetAction(r =>
        {
            CommonOptions.UseThreads(r.GetValue(threads));
            int[] sizes = CommonOptions.ParseSizes(r.GetValue(hidden)!, "--hidden");
            int n = r.GetValue(seeds);
            if (n < 1) throw new ColdmindException($"--seeds must be at least 1, got {n}.");
            var options = new LotteryTicket.Options(r.GetValue(rounds), r.GetValue(rate), r.GetValue(prune) switch
            {
                "global" => true, "layer" => false, var p => throw new ColdmindException($"--prune must be global or layer, got '{p}'."),
            }, r.GetValue(rewind), !r.GetValue(control));
            var training = new TrainOptions { Epochs = r.GetValue(epochs), BatchSize = r.GetValue(batch), LearningRate = r.GetValue(lr) };
            var runs = new List<IReadOnlyList<TicketRound>>();
            int steps = n * (options.Rounds + 1 + (options.RandomControl ? options.Rounds : 0));
            ProgressView.Steps("lottery", steps, r.GetValue(json), tick =>
            {
                for (int s = 0; s < n; s++)
                {
                    var splits = data.Load(r, (ulong)s);
                    int inputs = splits.Train.FeatureCount, classes = splits.Train.Classes;
                    var (_, _, rounds) = LotteryTicket.Find(rng => new Mlp(inputs, sizes, classes, rng), splits, training with { Seed = (ulong)s }, options, (ulong)s,
                        onRound: t => { tick(); if (t.RandomReinitAccuracy != null) tick(); });
                    runs.Add(rounds);
                }
            });
            var rows = Enumerable.Range(0, options.Rounds + 1).Select(i => (
                Density: runs[0][i].Density,
                Ticket: runs.Select(x => (double)x[i].TestAccuracy).ToArray(),
                Random: runs.Where(x => x[i].RandomReinitAccuracy != null).Select(x => (double)x[i].RandomReinitAccuracy!.Value).ToArray())).ToList();
            if (r.GetValue(report) is { } reportPath)
            {
                var chart = new LineChart("Test accuracy against weights remaining (mean of seeds)", "weights remaining (%)", "test accuracy (%)");
                chart.Add(new Series("winning ticket (rewound)", rows.Select(x => 100 * x.Density).ToArray(), rows.Select(x => 100 * x.Ticket.Average()).ToArray()));
                var withControl = rows.Where(x => x.Random.Length > 0).ToArray();
                if (withControl.Length > 0)
                    chart.Add(new Series("random re-initialisation", withControl.Select(x => 100 * x.Density).ToArray(), withControl.Select(x => 100 * x.Random.Average()).ToArray()));
                new HtmlReport($"Lottery tickets on {r.GetValue(data.Data)}").Chart(chart).Write(reportPath);
            }
            if (r.GetValue(json))
            {
                JsonOutput.Write(rows.Select(x => new { density = x.Density, ticket = x.Ticket, random_reinit = x.Random }));
                return 0;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("weights left", "ticket (mean ± sd)", "random re-init (mean ± sd)", "ticket − random");
            foreach (var x in rows)
                table.AddRow($"{x.Density:P1}", Stat(x.Ticket), x.Random.Length > 0 ? Stat(x.Random) : "—",
                    x.Random.Length > 0 ? $"{100 * (x.Ticket.Average() - x.Random.Average()):+0.00;−0.00} pt" : "");
            AnsiConsole.Write(table);
            return 0;
        });
        return cmd;
    }

    private static string Stat(double[] xs)
    {
        double mean = xs.Average(), sd = Math.Sqrt(xs.Sum(v => (v - mean) * (v - mean)) / Math.Max(1, xs.Length - 1));
        return string.Create(CultureInfo.InvariantCulture, $"{100 * mean:F2} ± {100 * sd:F2} %");
    }
}
