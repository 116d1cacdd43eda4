using Spectre.Console;
using System.CommandLine;
using System.Text.Json;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Export.Onnx;
using Coldmind.Models.Onnx;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind import MODEL.onnx --out model.safetensors`: an ONNX classifier (e.g. from torch.onnx.export) as a Coldmind checkpoint.</summary>
internal static class ImportCommand
{
    public static Command Create()
    {
        var modelPath = new Argument<string>("MODEL") { Description = "an .onnx classifier taking raw features (a chain of Gemm/MatMul, Conv, pools, activations, BatchNormalization)" };
        var output = new Option<string>("--out") { Description = "the checkpoint to write (.safetensors)", Required = true };
        var data = new ModelDataOptions(); // the data it is used with, whose raw features it takes (CSV standardisation depends on the split)
        var json = CommonOptions.Json();
        var cmd = new Command("import", "Read an ONNX classifier into a Coldmind checkpoint: eval, predict, cost, ptq and shrink --teacher take it.") { modelPath, output, json };
        data.AddTo(cmd);
        cmd.SetAction(r =>
        {
            string path = r.GetValue(modelPath)!, outPath = r.GetValue(output)!;
            if (!outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) throw new ColdmindException($"--out must name a .safetensors file, got '{outPath}'.");
            var imported = OnnxImporter.Import(path, r.GetValue(data.Data), r.GetValue(data.SplitSeed), r.GetValue(data.Label));
            imported.Save(outPath);
            long parameters = imported.State.Values.Sum(t => (long)t.Numel);
            if (r.GetValue(json))
                Console.WriteLine(JsonOutput.Serialize(new { model = path, output = outPath, layers = imported.Spec.Layers, parameters, data = imported.Provenance.Data }));
            else
                AnsiConsole.MarkupLineInterpolated($"Wrote [bold]{outPath}[/]: {imported.Spec.Describe()}, {parameters:N0} parameters, for {imported.Provenance.Data}'s raw features. Try: coldmind eval {outPath}");
            return 0;
        });
        return cmd;
    }
}
