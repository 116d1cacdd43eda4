using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Data;
using Coldmind.Export;
using Coldmind.Export.Onnx;
using Coldmind.Formats.Onnx;
using Coldmind.Models;
using Spectre.Console;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind export MODEL --target c|onnx --out DIR|FILE`: writes a classifier for another runtime. A switch on --target;
/// each target's work is in Coldmind.Export.
/// </summary>
internal static class ExportCommand
{
    private const string ModelHelp = "a classifier (`train`, `shrink` --out or --stages-out, `search`, `ptq --save`, `import`)";
    private const string FpuHelp = "c: single (float parts in float) or none (integers only, fixed point)";
    private const string VerifyHelp = "c: host (gcc, clang, the test split) or qemu (also Cortex-M7 and M3 under QEMU)";

    public static Command Create()
    {
        var modelPath = new Argument<string>("MODEL") { Description = ModelHelp };
        var target = new Option<string>("--target")
            { Description = "c: a C99 library for MCUs; onnx: a graph for ONNX Runtime (float, or QDQ)", Required = true };
        var output = new Option<string>("--out") { Description = "c: the folder to write (replaced); onnx: the file", Required = true };
        var fpu = new Option<string>("--fpu") { Description = FpuHelp, DefaultValueFactory = _ => "single" };
        var verify = new Option<string?>("--verify") { Description = VerifyHelp };
        var examples = new Option<int?>("--examples") { Description = "c: test examples to verify on (default: all)" };
        var data = new ModelDataOptions();
        var json = CommonOptions.Json();
        var cmd = new Command("export",
            "Write a classifier for another runtime: C99 for microcontrollers (verified on request) or ONNX (ONNX Runtime).")
            { modelPath, target, output, fpu, verify, examples, json };
        data.AddTo(cmd);
        cmd.SetAction(r => r.GetValue(target) switch
        {
            "c" => ExportC(r.GetValue(modelPath)!, r.GetValue(output)!, r.GetValue(fpu)!, r.GetValue(verify),
                r.GetValue(examples), Splits(r, data), r.GetValue(json)),
            "onnx" => ExportOnnx(r.GetValue(modelPath)!, r.GetValue(output)!, r.GetValue(json)),
            var t => throw new ColdmindException($"--target must be c or onnx, got '{t}'."),
        });
        return cmd;
    }

    /// <summary>The data a classifier was trained on (to calibrate and verify on), or as --data says.</summary>
    private static DataSplits Splits(ParseResult r, ModelDataOptions data) =>
        ModelFile.Open(r.GetValue<string>("MODEL")!) switch
        {
            ClassifierFile c => data.Splits(r, c.Provenance).Splits,
            var other => throw other.NotA("a classifier to export"),
        };

    private static int ExportOnnx(string path, string outPath, bool json)
    {
        if (!outPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new ColdmindException($"--out must name a .onnx file, got '{outPath}'.");
        var model = OnnxExporter.Export(path);
        OnnxFile.Write(outPath, model);
        var ops = model.Graph.Nodes.GroupBy(n => n.OpType).OrderByDescending(g => g.Count()).Select(g => $"{g.Key} ×{g.Count()}");
        long bytes = new FileInfo(outPath).Length;
        var input = model.Graph.Inputs[0];
        string shape = string.Join(", ", input.Dims.Select(d => d?.ToString(CultureInfo.InvariantCulture) ?? "batch"));
        if (json)
            JsonOutput.Write(new { model = path, output = outPath, target = "onnx", opset = model.Opset, bytes, nodes = model.Graph.Nodes.Count, input = shape });
        else
            AnsiConsole.WriteLine($"Wrote {outPath} ({bytes:N0} bytes, opset {model.Opset}): input '{input.Name}' ({shape}) "
                + $"of raw features; outputs 'logits' and 'probabilities'; {string.Join(", ", ops)}.");
        return 0;
    }

    private static int ExportC(string path, string outDir, string fpuText, string? verify, int? examples, DataSplits splits,
        bool json)
    {
        var fpu = fpuText switch
        {
            "single" => Fpu.Single, "none" => Fpu.None,
            _ => throw new ColdmindException($"--fpu must be single or none, got '{fpuText}'."),
        };
        if (verify is not (null or "host" or "qemu"))
            throw new ColdmindException($"--verify must be host or qemu, got '{verify}'.");
        if (examples is < 1) throw new ColdmindException($"--examples must be at least 1, got {examples}.");
        var deployment = CDeployment.Load(path, fpu, splits);
        var exporter = deployment.Exporter;
        exporter.Write(outDir);
        if (!json)
        {
            AnsiConsole.WriteLine($"Wrote {outDir}: {exporter.Describe()}; weights {exporter.WeightBytes:N0} B, "
                + $"arena {exporter.ArenaBytes:N0} B.");
            foreach (var s in exporter.Storage) AnsiConsole.WriteLine($"  {s}");
        }
        var result = verify == null ? null
            : deployment.Verify(outDir, verify == "qemu", examples, Console.Error.WriteLine);
        bool integer = deployment.Integer;
        if (json)
            JsonOutput.Write(new
            {
                model = path, out_dir = outDir, fpu = fpuText, weight_bytes = exporter.WeightBytes,
                arena_bytes = exporter.ArenaBytes,
                host_instructions_per_inference = result?.HostInstructions,
                runs = result?.Checks.Select(c => new
                {
                    target = c.Run.Target, examples = c.Examples, equal_predictions = c.EqualPredictions,
                    exact_scores = c.ExactScores, equal_to_host = c.SameAsHost,
                    max_relative_score_error = c.MaxScoreError, flash_bytes = c.Run.FlashBytes,
                    static_ram_bytes = c.Run.StaticRamBytes, stack_bytes = c.Run.StackBytes,
                    instructions_per_inference = c.Run.InstructionsPerInference,
                    instructions_per_systick_tick = c.Run.InstructionsPerTick,
                }),
            });
        else if (result != null)
        {
            foreach (var c in result.Checks) AnsiConsole.WriteLine(Describe(c, integer));
            if (result.HostInstructions is { } ir)
                AnsiConsole.WriteLine($"host (x86-64, valgrind callgrind): {ir:N0} instructions an inference");
        }
        if (result != null && !result.Checks.All(c => c.Passed(integer)))
            throw new ColdmindException(integer ? "The C build's integer scores differ from the reference (see above)."
                : "The C build's predictions differ from Coldmind's (see above).");
        return 0;
    }

    private static string Describe(CCheck c, bool integer)
    {
        var run = c.Run;
        string line = $"{run.Target}: {c.EqualPredictions}/{c.Examples} predictions equal Coldmind's, "
            + $"{c.ExactScores}/{c.Examples} scores bit-exact to the reference, "
            + $"{c.SameAsHost} {(integer ? "scores" : "predictions")} equal to the host's"
            + (integer ? "" : $", largest score error {c.MaxScoreError:G3} of the top score");
        if (run.FlashBytes is { } flash)
            line += $"; flash {flash:N0} B, RAM {run.StaticRamBytes + run.StackBytes:N0} B "
                + $"({run.StaticRamBytes:N0} static + {run.StackBytes:N0} stack), "
                + $"{run.InstructionsPerInference:N0} instructions an inference";
        return line;
    }
}
