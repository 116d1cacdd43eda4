using Spectre.Console;
using System.CommandLine;
using System.Diagnostics;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Data;
using Coldmind.Models;
using Coldmind.Runtime.Classifier;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind predict MODEL --data D`: runs a classifier (written by `coldmind shrink` or `coldmind train`) on a data set's test split, one example at a time.</summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var modelPath = new Argument<string>("MODEL") { Description = "a classifier: written by `coldmind shrink` (compact), `train` or `import`, or a .onnx file" };
        var data = new ModelDataOptions();
        var json = CommonOptions.Json();
        var cmd = new Command("predict", "Run a classifier (shrunk or trained) on a data set's test split: accuracy and time per inference.") { modelPath, json };
        data.AddTo(cmd);
        cmd.SetAction(r =>
        {
            string path = r.GetValue(modelPath)!;
            var model = ClassifierModel.Load(path, r.GetValue(data.Data));
            var (dataSpec, splits) = data.Splits(r, model.Provenance);
            var test = splits.Test;
            if (test.FeatureCount != model.Inputs || test.Classes != model.Classes)
                throw new ColdmindException($"'{path}' takes {model.Inputs} features and {model.Classes} classes; '{dataSpec}' has {test.FeatureCount} and {test.Classes}.");
            float accuracy = Accuracy(model, test); // the first pass also compiles the code
            var clock = Stopwatch.StartNew();
            Accuracy(model, test);
            double microseconds = clock.Elapsed.TotalSeconds * 1e6 / Math.Max(1, test.Count);
            if (r.GetValue(json))
                JsonOutput.Write(new { model = path, data = dataSpec, examples = test.Count, test_accuracy = accuracy, microseconds_per_inference = microseconds, layers = Describe(model) });
            else
                AnsiConsole.MarkupLineInterpolated($"{Describe(model)} from [bold]{path}[/] on {dataSpec}: test accuracy [bold green]{accuracy:P2}[/] ({test.Count} examples, {microseconds:F1} µs each).");
            return 0;
        });
        return cmd;
    }

    /// <summary>The layers as they run: a compact model's, or the network a checkpoint or an import describes.</summary>
    private static string Describe(ClassifierModel model) => model.Compact?.Describe() ?? model.Describe();

    /// <summary>Fraction of <paramref name="data"/> classified correctly, one example at a time.</summary>
    private static float Accuracy(ClassifierModel model, Dataset data)
    {
        int correct = 0;
        for (int i = 0; i < data.Count; i++)
            if (System.Numerics.Tensors.TensorPrimitives.IndexOfMax(model.Logits(data.Features.AsSpan(i * data.FeatureCount, data.FeatureCount))) == data.Labels[i]) correct++;
        return (float)correct / Math.Max(1, data.Count);
    }
}
