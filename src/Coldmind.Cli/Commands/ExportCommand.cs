using System.CommandLine;
using System.Text.Json;
using Coldmind.Export.Onnx;
using Coldmind.Formats.Onnx;
using Spectre.Console;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind export MODEL --target onnx --out model.onnx`: a Coldmind classifier for another runtime, one
/// library call per target.</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var modelPath = new Argument<string>("MODEL")
        {
            Description = "a classifier written by `coldmind train`, `shrink`, `ptq --save` or `import` (.safetensors)",
        };
        var target = new Option<string>("--target")
        {
            Description = "onnx: an ONNX graph for ONNX Runtime (float, or QDQ for quantized and ternary layers)",
            Required = true,
        };
        var output = new Option<string>("--out") { Description = "the file to write", Required = true };
        var json = CommonOptions.Json();
        var cmd = new Command(
            "export",
            "Write a classifier for another runtime: ONNX (ONNX Runtime on phones, browsers and PCs)."
        )
        {
            modelPath,
            target,
            output,
            json,
        };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(modelPath)!,
                outPath = r.GetValue(output)!;
            switch (r.GetValue(target))
            {
                case "onnx":
                    if (!outPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
                        throw new ColdmindException($"--out must name a .onnx file, got '{outPath}'.");
                    var model = OnnxExporter.Export(path);
                    OnnxFile.Write(outPath, model);
                    var ops = model
                        .Graph.Nodes.GroupBy(n => n.OpType)
                        .OrderByDescending(g => g.Count())
                        .Select(g => $"{g.Key} ×{g.Count()}");
                    long bytes = new FileInfo(outPath).Length;
                    var input = model.Graph.Inputs[0];
                    string shape = string.Join(
                        ", ",
                        input.Dims.Select(d =>
                            d?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "batch"
                        )
                    );
                    if (r.GetValue(json))
                        Console.WriteLine(
                            JsonSerializer.Serialize(
                                new
                                {
                                    model = path,
                                    output = outPath,
                                    target = "onnx",
                                    opset = model.Opset,
                                    bytes,
                                    nodes = model.Graph.Nodes.Count,
                                    input = shape,
                                }
                            )
                        );
                    else
                        AnsiConsole.MarkupLineInterpolated(
                            $"Wrote [bold]{outPath}[/] ({bytes:N0} bytes, opset {model.Opset}): input '{input.Name}' ({shape}) of raw features; outputs 'logits' and 'probabilities'; {string.Join(", ", ops)}."
                        );
                    return 0;
                case var t:
                    throw new ColdmindException($"--target must be onnx, got '{t}'.");
            }
        });
        return cmd;
    }
}
