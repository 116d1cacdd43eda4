using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Cost;
using Coldmind.Data;
using Coldmind.Models;
using Coldmind.Nn;
using Coldmind.Reports;
using Coldmind.Runtime.Classifier;
using Coldmind.Shrink;
using Coldmind.Tensors;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind search`: per-layer bit width and sparsity of a trained MLP under a budget, by NSGA-II; the Pareto
/// front, and the chosen model fine-tuned with its masks held and written as a compact classifier (--out).
/// </summary>
internal static class SearchCommand
{
    public static Command Create()
    {
        var data = new DataOptions();
        var hidden = new Option<string>("--hidden") { DefaultValueFactory = _ => "128" };
        var epochs = new Option<int>("--epochs") { DefaultValueFactory = _ => 30 };
        var maxBytes = new Option<long?>("--max-bytes") { Description = "budget: bytes of the weights" };
        var maxJoules = new Option<double?>("--max-joules") { Description = "budget: joules per inference, estimated on --device" };
        var maxLatency = new Option<double?>("--max-latency") { Description = "budget: seconds per inference, estimated on --device" };
        var device = new DeviceOptions();
        var population = new Option<int>("--population") { DefaultValueFactory = _ => 32 };
        var generations = new Option<int>("--generations") { DefaultValueFactory = _ => 20 };
        var seed = CommonOptions.Seed();
        var threads = CommonOptions.Threads();
        var report = new Option<string?>("--report") { Description = "write the Pareto front as an HTML report" };
        var output = new Option<string?>("--out") { Description = "write the chosen model, fine-tuned and compiled (packed codes, sparse where smaller), for `coldmind predict`" };
        var fineTune = new Option<int>("--finetune-epochs") { Description = "epochs of training the chosen model with its pruning masks held, before it is rounded", DefaultValueFactory = _ => 3 };
        var json = CommonOptions.Json();
        var cmd = new Command("search", "Search per-layer bit width and sparsity under a budget (NSGA-II): the Pareto front of accuracy, bytes and joules.")
            { hidden, epochs, maxBytes, maxJoules, maxLatency, population, generations, seed, threads, report, output, fineTune, json };
        device.AddTo(cmd);
        data.AddTo(cmd);
        cmd.SetAction(r =>
        {
            CommonOptions.UseThreads(r.GetValue(threads));
            string? outPath = r.GetValue(output);
            if (outPath != null && !outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) throw new ColdmindException($"--out must name a .safetensors file, got '{outPath}'.");
            if (r.GetValue(fineTune) < 0) throw new ColdmindException($"--finetune-epochs must be 0 or more, got {r.GetValue(fineTune)}.");
            var budget = new Budget(r.GetValue(maxBytes), r.GetValue(maxJoules), r.GetValue(maxLatency));
            budget.Validate();
            var profile = device.Load(r);
            string dataSpec = r.GetValue(data.Data)!;
            ulong s = r.GetValue(seed);
            var splits = data.Load(r, s);
            if (splits.Train.Classes < 2) throw new ColdmindException($"The data has {splits.Train.Classes} class; a classifier needs at least 2.");
            if (splits.Validation.Count == 0) throw new ColdmindException("The validation split is empty; the search scores candidates on it.");
            int[] sizes = CommonOptions.ParseSizes(r.GetValue(hidden)!, "--hidden");
            int inputs = splits.Train.FeatureCount, classes = splits.Train.Classes;
            Module Build() => new Mlp(inputs, sizes, classes, new Rng(s));
            var model = Build();
            IReadOnlyList<Candidate> front = [], all = [];
            bool quiet = r.GetValue(json);
            var training = new TrainOptions { Epochs = r.GetValue(epochs), BatchSize = 64, LearningRate = 2e-3f, Seed = s };
            Candidate? chosen = null;
            CompactClassifier? deployed = null;
            ProgressView.Run(quiet, progress =>
            {
                Trainer.Fit(model, splits.Train, splits.Validation, training, progress);
                (front, all) = ModelSearch.Run(model, Build, splits.Validation, budget, profile, r.GetValue(population), r.GetValue(generations), s, progress);
                // the most accurate candidate of the front within the budget, the smaller on a tie
                chosen = front.Where(c => c.Violation(budget) == 0).OrderByDescending(c => c.Accuracy).ThenBy(c => c.Bytes).FirstOrDefault();
                if (chosen == null) return;
                var meta = new Provenance { Data = dataSpec, Seed = s, Label = r.GetValue(data.Label) }.ToMetadata();
                CompactClassifier Deploy(int epochs) => ModelSearch.Deploy(model, Build(), chosen.Layers, splits.Train, splits.Validation, training with { Epochs = epochs }, meta, progress);
                deployed = Deploy(r.GetValue(fineTune));
                // fine-tuning moves which codes round to zero; if that tips the model over the budget, the searched weights are deployed
                var cost = CostModel.Estimate(Workload.FromClassifier(deployed, "chosen"), profile);
                if (budget.Violation(deployed.WeightBytes, cost.Joules, cost.Seconds) > 0) deployed = Deploy(0);
            });
            if (chosen == null || deployed == null)
            {
                var closest = all.OrderBy(c => c.Violation(budget)).ThenByDescending(c => c.Accuracy).First();
                throw new ColdmindException($"No model meets the budget ({budget.Describe()}). Closest reached: {closest.Bytes:N0} bytes, {closest.Joules * 1e6:F3} µJ, {closest.Seconds * 1e6:F1} µs on {profile.Name}, {closest.Accuracy:P2} validation accuracy ({closest.Describe()}).");
            }
            var trial = Build();
            trial.LoadState(ModelSearch.Apply(model, chosen.Layers));
            float test = Trainer.Accuracy(trial, splits.Test), deployedTest = deployed.Accuracy(splits.Test);
            if (outPath != null)
                deployed.WithMetadata((Provenance.Read(deployed.Metadata, outPath) with { TestAccuracy = deployedTest }).ToMetadata()).Save(outPath);
            if (r.GetValue(report) is { } reportPath)
            {
                var chart = new LineChart("Pareto front: validation accuracy against bytes", "bytes (log10)", "validation accuracy (%)");
                chart.Add(new Series("front", front.Select(c => Math.Log10(c.Bytes)).ToArray(), front.Select(c => 100.0 * c.Accuracy).ToArray()));
                new HtmlReport($"coldmind search on {dataSpec}").Paragraph($"Budget: {budget.Describe()}. Chosen: {chosen.Describe()}, {test:P2} test accuracy as searched, {deployedTest:P2} fine-tuned {r.GetValue(fineTune)} epochs, {deployed.WeightBytes:N0} bytes of weights.")
                    .Chart(chart).Write(reportPath);
            }
            if (quiet)
            {
                Console.WriteLine(JsonOutput.Serialize(new
                {
                    data = dataSpec, device = profile.Name, evaluated = all.Count,
                    front = front.Select(c => new { layers = c.Layers.Select(l => l.Name), validation_accuracy = c.Accuracy, bytes = c.Bytes, joules_per_inference = c.Joules, latency_seconds = c.Seconds, feasible = c.Violation(budget) == 0 }),
                    chosen = new
                    {
                        layers = chosen.Layers.Select(l => l.Name), validation_accuracy = chosen.Accuracy, test_accuracy = test, bytes = chosen.Bytes, joules_per_inference = chosen.Joules, latency_seconds = chosen.Seconds,
                        finetune_epochs = r.GetValue(fineTune), finetuned_test_accuracy = deployedTest, finetuned_bytes = deployed.WeightBytes, output = outPath,
                    },
                }));
                return 0;
            }
            var table = new Table().Border(TableBorder.Rounded).Title($"Pareto front ({all.Count} candidates scored)").AddColumns("layers (bits@sparsity)", "val acc", "bytes", $"µJ on {profile.Name}", $"µs on {profile.Name}", "in budget");
            foreach (var c in front)
                table.AddRow(Markup.Escape(c.Describe()), $"{c.Accuracy:P2}", c.Bytes.ToString("N0", CultureInfo.InvariantCulture), (c.Joules * 1e6).ToString("F3", CultureInfo.InvariantCulture),
                    (c.Seconds * 1e6).ToString("F1", CultureInfo.InvariantCulture), c.Violation(budget) == 0 ? "yes" : "no");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLineInterpolated($"Chosen: [bold]{chosen.Describe()}[/], {chosen.Bytes:N0} bytes, {test:P2} test accuracy as searched (pruned and rounded after training).");
            AnsiConsole.MarkupLineInterpolated($"Fine-tuned {r.GetValue(fineTune)} epochs with its masks held, then rounded: {deployedTest:P2} test accuracy, {deployed.WeightBytes:N0} bytes of weights ({deployed.Describe()}).");
            if (outPath != null) AnsiConsole.MarkupLineInterpolated($"Wrote [bold]{outPath}[/]. Run it: coldmind predict {outPath}");
            return 0;
        });
        return cmd;
    }
}
