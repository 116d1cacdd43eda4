using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Data;
using Coldmind.Formats;
using Coldmind.Models;
using Coldmind.Nn;
using Coldmind.Numerics;
using Coldmind.Tensors;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind train`: train an MLP or a small CNN on a data set, report test accuracy, save a checkpoint.</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var data = new DataOptions();
        var model = new Option<string>("--model") { Description = "mlp or cnn", DefaultValueFactory = _ => "mlp" };
        model.AcceptOnlyFromAmong("mlp", "cnn");
        var hidden = new Option<string?>("--hidden") { Description = "hidden layer sizes: for mlp e.g. 300,100 (default); for cnn the dense layer (default 128)" };
        var channels = new Option<string>("--channels") { Description = "cnn only: channels of the conv layers", DefaultValueFactory = _ => "32,64" };
        var epochs = new Option<int>("--epochs") { Description = "passes over the training set; 0 writes the untrained initialisation (a shared start for models to merge later)", DefaultValueFactory = _ => 20 };
        var batch = new Option<int>("--batch") { Description = "mini-batch size", DefaultValueFactory = _ => 64 };
        var lr = new Option<float>("--lr") { Description = "peak learning rate (cosine schedule with warm-up)", DefaultValueFactory = _ => 1e-3f };
        var optimizer = new Option<string>("--optimizer") { Description = "adamw or sgd (Nesterov momentum 0.9)", DefaultValueFactory = _ => "adamw" };
        optimizer.AcceptOnlyFromAmong("adamw", "sgd");
        var weightDecay = new Option<float>("--weight-decay") { Description = "decoupled (AdamW) or L2 (SGD) weight decay", DefaultValueFactory = _ => 1e-4f };
        var smoothing = new Option<float>("--label-smoothing") { Description = "label smoothing ε for the cross-entropy", DefaultValueFactory = _ => 0f };
        var clip = new Option<float>("--clip") { Description = "clip the global gradient norm to this value (0: off)", DefaultValueFactory = _ => 0f };
        var seed = CommonOptions.Seed();
        var threads = CommonOptions.Threads();
        var output = new Option<string?>("--out") { Description = "write the trained model to this .safetensors file" };
        var json = CommonOptions.Json();
        var report = new Option<string?>("--report") { Description = "write an HTML report (learning curves, per-epoch table) to this file" };
        var ternary = new Option<bool>("--ternary") { Description = "mlp only: BitNet b1.58 hidden layers (ternary weights, int8 activations, trained with a straight-through estimator)" };
        var init = new Option<string?>("--init") { Description = "start from the weights of this .safetensors model (e.g. a float model to convert to --ternary)" };
        var classes = new Option<string?>("--classes") { Description = "train (and validate) on these classes only, e.g. 0-4 or 0,2,5; the head keeps every class and the test set stays whole (parents for `coldmind evolve`)" };
        var quantWarmup = new Option<float>("--quant-warmup") { Description = "fraction of training over which --ternary layers go from float to fully quantized (λ 0 → 1); 0.5 suits --init", DefaultValueFactory = _ => 0f };

        var cmd = new Command("train", "Train a classifier and report its test accuracy.")
        {
            model, hidden, channels, epochs, batch, lr, optimizer, weightDecay, smoothing, clip, seed, threads, output, json, report,
            ternary, init, quantWarmup, classes,
        };
        data.AddTo(cmd);
        cmd.SetAction(r =>
        {
            CommonOptions.UseThreads(r.GetValue(threads));
            string dataSpec = r.GetValue(data.Data)!;
            ulong s = r.GetValue(seed);
            string? outPath = r.GetValue(output);
            if (outPath != null && !outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                throw new ColdmindException($"--out must name a .safetensors file, got '{outPath}'.");
            string? reportPath = r.GetValue(report);
            if (reportPath != null && !reportPath.EndsWith(".html", StringComparison.OrdinalIgnoreCase))
                throw new ColdmindException($"--report must name an .html file, got '{reportPath}'.");
            var splits = data.Load(r, s);
            if (r.GetValue(classes) is { } only) splits = OnlyClasses(splits, ParseClasses(only, splits.Train.Classes));
            var train = splits.Train;
            if (r.GetValue(ternary) && r.GetValue(model) == "cnn") throw new ColdmindException("--ternary is implemented for --model mlp only.");
            var spec = r.GetValue(model) == "cnn"
                ? ClassifierSpec.ForCnn(train.SampleShape, train.Classes, CommonOptions.ParseSizes(r.GetValue(channels)!, "--channels"),
                    CommonOptions.ParseSizes(r.GetValue(hidden) ?? "128", "--hidden") is [var h] ? h : throw new ColdmindException("--hidden takes one size for a cnn."))
                : ClassifierSpec.ForMlp(train.SampleShape, train.Classes, CommonOptions.ParseSizes(r.GetValue(hidden) ?? "300,100", "--hidden"), r.GetValue(ternary));
            var net = spec.Build(new Rng(s));
            if (r.GetValue(init) is { } initPath)
            {
                int loaded = net.LoadState(Safetensors.Read(initPath).ToTensors(), partial: true);
                if (loaded == 0) throw new ColdmindException($"'{initPath}' has no tensor whose name matches this model ({spec.Describe()}).");
            }
            var options = new TrainOptions
            {
                Epochs = r.GetValue(epochs), BatchSize = r.GetValue(batch), LearningRate = r.GetValue(lr), Optimizer = r.GetValue(optimizer)!,
                WeightDecay = r.GetValue(weightDecay), LabelSmoothing = r.GetValue(smoothing), ClipNorm = r.GetValue(clip), Seed = s,
                QuantizationWarmup = r.GetValue(quantWarmup),
            };
            bool asJson = r.GetValue(json);
            if (!asJson)
                AnsiConsole.MarkupLineInterpolated($"[bold]{spec.Describe()}[/] on [bold]{dataSpec}[/]: {train.Count} train / {splits.Validation.Count} validation / {splits.Test.Count} test, {net.ParameterCount:N0} parameters, {r.GetValue(threads)} thread(s)");

            var result = options.Epochs == 0 ? new TrainResult([], 0)
                : asJson ? Trainer.Fit(net, train, splits.Validation, options) : TrainWithProgress(net, splits, options);
            float testAcc = Trainer.Accuracy(net, splits.Test);
            if (outPath != null)
            {
                var provenance = new Provenance
                {
                    Spec = spec, Data = dataSpec, Seed = s, Label = r.GetValue(data.Label), TrainClasses = r.GetValue(classes), TestAccuracy = testAcc,
                };
                TensorFile.Write(outPath, net.NamedParameters(), provenance.ToMetadata());
            }
            if (reportPath != null) WriteReport(reportPath, spec, dataSpec, net.ParameterCount, result, testAcc);
            if (asJson)
            {
                var last = result.Epochs.Count > 0 ? result.Epochs[^1] : null;
                Console.WriteLine(JsonOutput.Serialize(new Dictionary<string, object?>
                {
                    ["data"] = dataSpec,
                    ["model"] = spec.Describe(),
                    ["parameters"] = net.ParameterCount,
                    ["epochs"] = result.Epochs.Count,
                    ["seed"] = s,
                    ["threads"] = r.GetValue(threads),
                    ["train_seconds"] = Math.Round(result.TrainSeconds, 3),
                    ["final_train_loss"] = last?.TrainLoss,
                    ["validation_accuracy"] = last == null || float.IsNaN(last.ValidationAccuracy) ? null : last.ValidationAccuracy,
                    ["test_accuracy"] = testAcc,
                    ["out"] = outPath,
                    ["report"] = reportPath,
                }));
            }
            else
            {
                AnsiConsole.MarkupLineInterpolated($"Test accuracy: [bold green]{testAcc:P2}[/] ({splits.Test.Count} examples) after {result.TrainSeconds:F1} s of training.");
                if (outPath != null) AnsiConsole.MarkupLineInterpolated($"Model written to [bold]{outPath}[/]. Check it with: coldmind eval {outPath}");
                if (reportPath != null) AnsiConsole.MarkupLineInterpolated($"Report written to [bold]{reportPath}[/].");
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>--classes: ranges and single classes, "0-4" or "0,2,5".</summary>
    internal static int[] ParseClasses(string text, int classes)
    {
        var result = new SortedSet<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var ends = part.Split('-');
            if (ends.Length is < 1 or > 2 || !int.TryParse(ends[0], CultureInfo.InvariantCulture, out int lo) || !int.TryParse(ends[^1], CultureInfo.InvariantCulture, out int hi) || lo > hi)
                throw new ColdmindException($"--classes takes class numbers and ranges such as 0-4 or 0,2,5; got '{text}'.");
            if (lo < 0 || hi >= classes) throw new ColdmindException($"--classes {text}: this data has classes 0 to {classes - 1}.");
            for (int c = lo; c <= hi; c++) result.Add(c);
        }
        if (result.Count < 2) throw new ColdmindException($"--classes {text} names fewer than two classes; a classifier needs two.");
        return [.. result];
    }

    /// <summary>Training and validation restricted to <paramref name="classes"/>; the test split stays whole, so the model is measured on every class.</summary>
    private static DataSplits OnlyClasses(DataSplits splits, int[] classes)
    {
        return splits with { Train = splits.Train.WithLabels(classes.Contains), Validation = splits.Validation.WithLabels(classes.Contains) };
    }

    private static void WriteReport(string path, ClassifierSpec spec, string data, long parameters, TrainResult result, float testAccuracy)
    {
        var epochs = result.Epochs.Select(e => (double)e.Epoch).ToArray();
        string Pct(float v) => float.IsNaN(v) ? "–" : v.ToString("P2", CultureInfo.InvariantCulture);
        new Reports.HtmlReport($"coldmind train: {spec.Describe()} on {data}")
            .Table(["model", "data", "parameters", "epochs", "training seconds", "test accuracy"],
                [[spec.Describe(), data, parameters.ToString("N0", CultureInfo.InvariantCulture), result.Epochs.Count.ToString(CultureInfo.InvariantCulture),
                  result.TrainSeconds.ToString("F1", CultureInfo.InvariantCulture), Pct(testAccuracy)]])
            .Chart(new Reports.LineChart("Training loss", "epoch", "cross-entropy")
                .Add(new Reports.Series("train loss", epochs, result.Epochs.Select(e => (double)e.TrainLoss).ToArray())))
            .Chart(new Reports.LineChart("Accuracy", "epoch", "accuracy")
                .Add(new Reports.Series("train", epochs, result.Epochs.Select(e => (double)e.TrainAccuracy).ToArray()))
                .Add(new Reports.Series("validation", epochs, result.Epochs.Select(e => (double)e.ValidationAccuracy).ToArray())))
            .Table(["epoch", "train loss", "train accuracy", "validation accuracy", "seconds"],
                result.Epochs.Select(e => (IReadOnlyList<string>)[e.Epoch.ToString(CultureInfo.InvariantCulture), e.TrainLoss.ToString("F4", CultureInfo.InvariantCulture),
                    Pct(e.TrainAccuracy), Pct(e.ValidationAccuracy), e.Seconds.ToString("F2", CultureInfo.InvariantCulture)]))
            .Write(path);
    }

    private static TrainResult TrainWithProgress(Module net, DataSplits splits, TrainOptions options)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumns("epoch", "train loss", "train acc", "validation acc", "seconds");
        foreach (var c in table.Columns.Skip(1)) c.RightAligned();
        TrainResult? result = null;
        ProgressView.Run(quiet: false, progress =>
            result = Trainer.Fit(net, splits.Train, splits.Validation, options, progress.As("training"),
                onEpoch: e => table.AddRow(e.Epoch.ToString(CultureInfo.InvariantCulture), e.TrainLoss.ToString("F4", CultureInfo.InvariantCulture),
                    e.TrainAccuracy.ToString("P2", CultureInfo.InvariantCulture), e.ValidationAccuracy.ToString("P2", CultureInfo.InvariantCulture),
                    e.Seconds.ToString("F2", CultureInfo.InvariantCulture))));
        AnsiConsole.Write(table);
        return result!;
    }
}
