using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Cognition;
using Coldmind.Cost;
using Coldmind.Models;
using Coldmind.Nn;
using Coldmind.Runtime.Classifier;
using Coldmind.Tensors;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind adapt MODEL --drift shift:3 --examples N`: after a drift, refit on the device without a backward pass
/// (the head in closed form) and compare, per joule, with backprop fine-tuning of every layer.
/// </summary>
internal static class AdaptCommand
{
    public static Command Create()
    {
        var modelPath = new Argument<string>("MODEL") { Description = "an MLP: a shrunk model (forward-only only) or a `coldmind train` checkpoint (both)" };
        var data = new ModelDataOptions();
        var drift = new Option<string>("--drift") { Description = "shift:PIXELS (the camera moved) or contrast:FACTOR (the light changed)", DefaultValueFactory = _ => "shift:2" };
        var examples = new Option<int>("--examples") { Description = "labelled drifted examples to adapt on (from the validation split)", DefaultValueFactory = _ => 1000 };
        var epochs = new Option<int>("--epochs") { Description = "backprop fine-tuning epochs over the examples", DefaultValueFactory = _ => 5 };
        var device = new DeviceOptions();
        var json = CommonOptions.Json();
        var cmd = new Command("adapt", "Adapt to a drift on the device: forward-only head refit against backprop fine-tuning, accuracy per joule.")
            { modelPath, drift, examples, epochs, json };
        data.AddTo(cmd);
        device.AddTo(cmd);
        cmd.SetAction(r =>
        {
            string path = r.GetValue(modelPath)!;
            var model = ClassifierModel.Load(path);
            var compact = model.Compact ?? throw new ColdmindException($"'{path}' is a CNN; forward-only adaptation refits an MLP's head.");
            var (dataSpec, splits) = data.Splits(r, model.Provenance);
            ulong seed = model.Provenance.Seed ?? 0;
            var shift = Drift.Parse(r.GetValue(drift)!);
            int n = r.GetValue(examples);
            if (n < 1 || n > splits.Validation.Count) throw new ColdmindException($"--examples must be in 1..{splits.Validation.Count} (the validation split), got {n}.");
            if (r.GetValue(epochs) < 1) throw new ColdmindException($"--epochs must be at least 1, got {r.GetValue(epochs)}.");
            var profile = device.Load(r);
            var adaptOn = shift.Apply(splits.Validation.Subset(Enumerable.Range(0, n).ToArray()));
            var driftedTest = shift.Apply(splits.Test);
            double inference = CostModel.Estimate(Workload.Of(model), profile).Joules;
            double Fp32Joules(long macs) => CostModel.Estimate(new Workload("adapt", "run", [new LayerWork("adapt", macs, 0, 0, 0, 0, 0)]), profile).Joules;

            var rows = new List<(string Name, float Drifted, float Original, double Joules, double Seconds)>
            {
                ("no adaptation", compact.Accuracy(driftedTest), compact.Accuracy(splits.Test), 0, 0),
            };
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var refit = ForwardOnlyAdaptation.Refit(compact, adaptOn);
            rows.Add(("forward-only (head refit)", refit.Model.Accuracy(driftedTest), refit.Model.Accuracy(splits.Test), n * inference + Fp32Joules(refit.SolveMacs), clock.Elapsed.TotalSeconds));

            if (ModelFile.Open(path) is ClassifierFile { IsCompact: false } file) // a training checkpoint: its latent float weights can be fine-tuned
            {
                var net = file.Provenance.Spec!.Build(new Rng(0));
                net.LoadState(file.File.ToTensors());
                clock.Restart();
                Trainer.Fit(net, adaptOn, null, new TrainOptions { Epochs = r.GetValue(epochs), BatchSize = 32, LearningRate = 1e-3f, Seed = seed });
                var tuned = CompactClassifier.Compile(net);
                // a training step is a forward pass and a backward pass of about twice its work
                rows.Add(($"backprop fine-tuning ({r.GetValue(epochs)} epochs)", tuned.Accuracy(driftedTest), tuned.Accuracy(splits.Test), 3.0 * r.GetValue(epochs) * n * inference, clock.Elapsed.TotalSeconds));
            }

            if (r.GetValue(json))
            {
                Console.WriteLine(JsonOutput.Serialize(new
                {
                    model = path, data = dataSpec, drift = r.GetValue(drift), examples = n, device = profile.Name,
                    results = rows.Select(x => new { name = x.Name, drifted_test_accuracy = x.Drifted, original_test_accuracy = x.Original, joules = x.Joules, seconds_here = x.Seconds }),
                }));
                return 0;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("adaptation", "drifted test acc", "original test acc", $"mJ on {profile.Name}", "s here");
            foreach (var c in table.Columns.Skip(1)) c.RightAligned();
            foreach (var x in rows)
                table.AddRow(x.Name, $"{x.Drifted:P2}", $"{x.Original:P2}", (x.Joules * 1e3).ToString("G3", CultureInfo.InvariantCulture), x.Seconds.ToString("F2", CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLineInterpolated($"[grey]{n} labelled examples drifted by {r.GetValue(drift)}; joules from the cost model ({inference * 1e6:F2} µJ an inference on {profile.Name}; a backprop step counted as 3 inferences).[/]");
            return 0;
        });
        return cmd;
    }
}
