using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Coldmind.Data;
using Coldmind.Formats;
using Coldmind.Nn;
using Coldmind.Tensors;
using Spectre.Console;

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
            var file = Safetensors.Read(path);
            var spec = ClassifierSpec.FromMetadata(file.Metadata, path);
            var net = spec.Build(new Rng(0));
            net.LoadState(file.Tensors);
            string dataSpec = r.GetValue(data) ?? file.Metadata.GetValueOrDefault("coldmind.data") ?? "digits";
            ulong s = r.GetValue(seed) ?? (file.Metadata.TryGetValue("coldmind.seed", out var sv) ? ulong.Parse(sv, CultureInfo.InvariantCulture) : 0);
            var test = BuiltinData.Load(dataSpec, s, file.Metadata.GetValueOrDefault("coldmind.label")).Test;
            if (!test.SampleShape.SequenceEqual(spec.InputShape) || test.Classes != spec.Classes)
                throw new ColdmindException($"'{path}' expects inputs {Shape.Format(spec.InputShape)} and {spec.Classes} classes; '{dataSpec}' has {Shape.Format(test.SampleShape)} and {test.Classes}.");
            float acc = Trainer.Accuracy(net, test);
            if (r.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object> { ["model"] = path, ["data"] = dataSpec, ["test_accuracy"] = acc, ["examples"] = test.Count }));
            else
                AnsiConsole.MarkupLineInterpolated($"{spec.Describe()} from [bold]{path}[/] on {dataSpec}: test accuracy [bold green]{acc:P2}[/] ({test.Count} examples).");
            return 0;
        });
        return cmd;
    }
}
