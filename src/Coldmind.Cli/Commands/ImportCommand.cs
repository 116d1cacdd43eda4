using System.CommandLine;
using System.Text.Json;
using Coldmind.Export.Onnx;
using Spectre.Console;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind import MODEL.onnx --out model.safetensors`: an ONNX classifier (e.g. from torch.onnx.export) as a
/// Coldmind checkpoint.</summary>
internal static class ImportCommand
{
    public static Command Create()
    {
        var modelPath = new Argument<string>("MODEL")
        {
            Description =
                "an .onnx classifier taking raw features (a chain of Gemm/MatMul, Conv, pools, activations, BatchNormalization)",
        };
        var output = new Option<string>("--out")
        {
            Description = "the checkpoint to write (.safetensors)",
            Required = true,
        };
        var data = new Option<string?>("--data")
        {
            Description =
                "the data it is used with, whose raw features it takes (default: its coldmind.data metadata, else digits)",
        };
        var seed = new Option<ulong?>("--seed")
        {
            Description = "split seed of that data (CSV standardisation depends on it)",
        };
        var label = CommonOptions.LabelColumn();
        var json = CommonOptions.Json();
        var cmd = new Command(
            "import",
            "Read an ONNX classifier into a Coldmind checkpoint: eval, predict, cost, ptq and shrink --teacher take it."
        )
        {
            modelPath,
            output,
            data,
            seed,
            label,
            json,
        };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(modelPath)!,
                outPath = r.GetValue(output)!;
            if (!outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
                throw new ColdmindException($"--out must name a .safetensors file, got '{outPath}'.");
            var imported = OnnxImporter.Import(path, r.GetValue(data), r.GetValue(seed), r.GetValue(label));
            imported.Save(outPath);
            long parameters = imported.State.Values.Sum(t => (long)t.Numel);
            if (r.GetValue(json))
                Console.WriteLine(
                    JsonSerializer.Serialize(
                        new
                        {
                            model = path,
                            output = outPath,
                            layers = imported.Spec.Layers,
                            parameters,
                            data = imported.Metadata["coldmind.data"],
                        }
                    )
                );
            else
                AnsiConsole.MarkupLineInterpolated(
                    $"Wrote [bold]{outPath}[/]: {imported.Spec.Describe()}, {parameters:N0} parameters, for {imported.Metadata["coldmind.data"]}'s raw features. Try: coldmind eval {outPath}"
                );
            return 0;
        });
        return cmd;
    }
}
