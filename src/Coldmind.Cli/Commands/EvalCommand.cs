using Spectre.Console;
using System.CommandLine;
using Coldmind.Cli.Output;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind eval MODEL.safetensors`: rebuild a trained classifier from its checkpoint and measure it on the test split.</summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var modelPath = new Argument<string>("MODEL") { Description = "a .safetensors checkpoint written by `coldmind train --out`" };
        var data = new Option<string?>("--data") { Description = "data to evaluate on (default: the data the model was trained on)" };
        var seed = new Option<ulong?>("--seed") { Description = "split seed (default: the training seed, so the test split is the same)" };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var cmd = new Command("eval", "Measure a saved model's accuracy on a test split.") { modelPath, data, seed, threads, json };
        cmd.SetAction(r =>
        {
            CommonOptions.UseThreads(r.GetValue(threads));
            string path = r.GetValue(modelPath)!;
            var checkpoint = TrainedCheckpoint.Load(path, r.GetValue(data), r.GetValue(seed));
            var (spec, dataSpec, test) = (checkpoint.Spec, checkpoint.DataSpec, checkpoint.Test);
            float acc = checkpoint.Accuracy();
            if (r.GetValue(json))
                JsonOutput.Write(new Dictionary<string, object> { ["model"] = path, ["data"] = dataSpec, ["test_accuracy"] = acc, ["examples"] = test.Count });
            else
                AnsiConsole.MarkupLineInterpolated($"{spec.Describe()} from [bold]{path}[/] on {dataSpec}: test accuracy [bold green]{acc:P2}[/] ({test.Count} examples).");
            return 0;
        });
        return cmd;
    }
}
