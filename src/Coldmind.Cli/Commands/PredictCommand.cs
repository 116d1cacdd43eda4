using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Coldmind.Data;
using Coldmind.Runtime;
using Spectre.Console;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind predict MODEL --data D`: runs a model written by `coldmind shrink` on a data set's test split, one example at a time.</summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var modelPath = new Argument<string>("MODEL") { Description = "a .safetensors model written by `coldmind shrink` (or `train`, `import`), or a .onnx classifier" };
        var data = new Option<string?>("--data") { Description = "data to predict (default: the data the model was shrunk on)" };
        var label = CommonOptions.LabelColumn();
        var json = CommonOptions.Json();
        var cmd = new Command("predict", "Run a shrunk model on a data set's test split: accuracy and time per inference.") { modelPath, data, label, json };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(modelPath)!;
            var model = ClassifierModel.Load(path, r.GetValue(data));
            string dataSpec = r.GetValue(data) ?? model.Metadata.GetValueOrDefault("coldmind.data") ?? "digits";
            ulong seed = model.Metadata.TryGetValue("coldmind.seed", out var sv) ? ulong.Parse(sv, CultureInfo.InvariantCulture) : 0;
            var test = BuiltinData.Load(dataSpec, seed, r.GetValue(label) ?? model.Metadata.GetValueOrDefault("coldmind.label")).Test;
            if (test.FeatureCount != model.Inputs || test.Classes != model.Classes)
                throw new ColdmindException($"'{path}' takes {model.Inputs} features and {model.Classes} classes; '{dataSpec}' has {test.FeatureCount} and {test.Classes}.");
            float accuracy = Accuracy(model, test); // the first pass also compiles the code
            var clock = Stopwatch.StartNew();
            Accuracy(model, test);
            double microseconds = clock.Elapsed.TotalSeconds * 1e6 / Math.Max(1, test.Count);
            if (r.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new { model = path, data = dataSpec, examples = test.Count, test_accuracy = accuracy, microseconds_per_inference = microseconds, layers = Describe(model) }));
            else
                AnsiConsole.MarkupLineInterpolated($"{Describe(model)} from [bold]{path}[/] on {dataSpec}: test accuracy [bold green]{accuracy:P2}[/] ({test.Count} examples, {microseconds:F1} µs each).");
            return 0;
        });
        return cmd;
    }

    private static string Describe(ClassifierModel model) =>
        model.Compact?.Describe() ?? (model.Metadata.TryGetValue("coldmind.stack", out var s) && s.Length > 0 ? s.Replace(";", " →", StringComparison.Ordinal) : model.Name);

    /// <summary>Fraction of <paramref name="data"/> classified correctly, one example at a time.</summary>
    private static float Accuracy(ClassifierModel model, Dataset data)
    {
        int correct = 0;
        for (int i = 0; i < data.Count; i++)
            if (Sampler.ArgMax(model.Logits(data.Features.AsSpan(i * data.FeatureCount, data.FeatureCount))) == data.Labels[i]) correct++;
        return (float)correct / Math.Max(1, data.Count);
    }
}
