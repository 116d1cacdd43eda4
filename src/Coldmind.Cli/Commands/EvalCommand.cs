using Spectre.Console;
using System.CommandLine;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Runtime.Classifier;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind eval MODEL`: a classifier (written by train or shrink) measured on the test split its training never saw.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var modelPath = new Argument<string>("MODEL") { Description = "a classifier: a checkpoint written by `coldmind train` or a shrunk (compact) one" };
        var data = new ModelDataOptions();
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var cmd = new Command("eval", "Measure a saved model's accuracy on a test split.") { modelPath, threads, json };
        data.AddTo(cmd);
        cmd.SetAction(r =>
        {
            CommonOptions.UseThreads(r.GetValue(threads));
            string path = r.GetValue(modelPath)!;
            // a training checkpoint runs through the engine it was trained in, so its accuracy is the one train reported
            var model = ClassifierModel.Load(path);
            var (dataSpec, splits) = data.Splits(r, model.Provenance);
            var test = splits.Test;
            float acc = model.Provenance.IsCompactClassifier ? model.Accuracy(test)
                : TrainedCheckpoint.Load(path, r.GetValue(data.Data), r.GetValue(data.SplitSeed), r.GetValue(data.Label)).Accuracy();
            if (r.GetValue(json))
                JsonOutput.Write(new Dictionary<string, object> { ["model"] = path, ["data"] = dataSpec, ["test_accuracy"] = acc, ["examples"] = test.Count });
            else
                AnsiConsole.MarkupLineInterpolated($"{model.Describe()} from [bold]{path}[/] on {dataSpec}: test accuracy [bold green]{acc:P2}[/] ({test.Count} examples).");
            return 0;
        });
        return cmd;
    }
}
