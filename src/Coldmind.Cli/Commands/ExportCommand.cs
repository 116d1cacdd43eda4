using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Data;
using Coldmind.Export;
using Coldmind.Export.Onnx;
using Coldmind.Formats.Onnx;
using Coldmind.Models;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind export MODEL --target T --out DIR`: writes a classifier for another runtime. A switch on --target;
/// each target's work is in Coldmind.Export.
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var modelPath = new Argument<string>("MODEL")
        {
            Description = "a classifier: from `coldmind train`, `shrink` (--out, --stages-out), `search`, `ptq --save` or `import`",
        };
        var target = new Option<string>("--target")
        {
            Description = "c: a C99 library for microcontrollers; onnx: an ONNX graph for ONNX Runtime (float, or QDQ for quantized and ternary layers)",
            Required = true,
        };
        var output = new Option<string>("--out") { Description = "c: the folder to write (replaced as a whole); onnx: the .onnx file", Required = true };
        var fpu = new Option<string>("--fpu") { Description = "c: single (float parts in float) or none (integers only, fixed point)", DefaultValueFactory = _ => "single" };
        var verify = new Option<string?>("--verify") { Description = "c: host (cc, the whole test split) or qemu (also Cortex-M7 and M3 under qemu-system-arm)" };
        var examples = new Option<int?>("--examples") { Description = "c: test examples to verify on (default: the whole test split)" };
        var data = new ModelDataOptions();
        var json = CommonOptions.Json();
        var cmd = new Command("export",
            "Write a classifier for another runtime: a C99 library for microcontrollers (verified on request) or ONNX (ONNX Runtime on phones and PCs).")
            { modelPath, target, output, fpu, verify, examples, json };
        data.AddTo(cmd);
        cmd.SetAction(r => r.GetValue(target) switch
        {
            "c" => ExportC(r.GetValue(modelPath)!, r.GetValue(output)!, r.GetValue(fpu)!, r.GetValue(verify), r.GetValue(examples), Splits(r, data),
                r.GetValue(json)),
            "onnx" => ExportOnnx(r.GetValue(modelPath)!, r.GetValue(output)!, r.GetValue(json)),
            var t => throw new ColdmindException($"--target must be c or onnx, got '{t}'."),
        });
        return cmd;
    }

    private static int ExportOnnx(string path, string outPath, bool json)
    {
        if (!outPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) throw new ColdmindException($"--out must name a .onnx file, got '{outPath}'.");
        var model = OnnxExporter.Export(path);
        OnnxFile.Write(outPath, model);
        var ops = model.Graph.Nodes.GroupBy(n => n.OpType).OrderByDescending(g => g.Count()).Select(g => $"{g.Key} ×{g.Count()}");
        long bytes = new FileInfo(outPath).Length;
        var input = model.Graph.Inputs[0];
        string shape = string.Join(", ", input.Dims.Select(d => d?.ToString(CultureInfo.InvariantCulture) ?? "batch"));
        if (json)
            JsonOutput.Write(new { model = path, output = outPath, target = "onnx", opset = model.Opset, bytes, nodes = model.Graph.Nodes.Count, input = shape });
        else
            AnsiConsole.MarkupLineInterpolated(
                $"Wrote [bold]{outPath}[/] ({bytes:N0} bytes, opset {model.Opset}): input '{input.Name}' ({shape}) of raw features; outputs 'logits' and 'probabilities'; {string.Join(", ", ops)}.");
        return 0;
    }

    /// <summary>The data a classifier was trained on (for calibration and verification), or as --data says.</summary>
    private static (string DataSpec, DataSplits Splits) Splits(ParseResult r, ModelDataOptions data) =>
        ModelFile.Open(r.GetValue<string>("MODEL")!) switch
        {
            ClassifierFile c => data.Splits(r, c.Provenance),
            var other => throw other.NotA("a classifier to export"),
        };

    private static int ExportC(string path, string outDir, string fpuText, string? verify, int? examples,
        (string DataSpec, DataSplits Splits) data, bool json)
    {
        var fpu = fpuText switch { "single" => Fpu.Single, "none" => Fpu.None, _ => throw new ColdmindException($"--fpu must be single or none, got '{fpuText}'.") };
        if (verify is not (null or "host" or "qemu")) throw new ColdmindException($"--verify must be host or qemu, got '{verify}'.");
        if (examples is < 1) throw new ColdmindException($"--examples must be at least 1, got {examples}.");
        var (dataSpec, splits) = data;
        var deployment = CDeployment.Load(path, fpu, splits);
        deployment.Exporter.Write(outDir);
        var report = new List<object>();
        if (!json)
        {
            AnsiConsole.MarkupLineInterpolated($"Wrote [bold]{outDir}[/]: {deployment.Exporter.Describe()}; weights {deployment.Exporter.WeightBytes:N0} B, arena {deployment.Exporter.ArenaBytes:N0} B.");
            foreach (var s in deployment.Exporter.Storage) AnsiConsole.MarkupLineInterpolated($"  {s}");
        }
        if (verify != null)
        {
            bool integer = deployment.Integer;
            foreach (var compiler in new[] { "cc", "clang" })
            {
                Console.Error.WriteLine($"compiling with {compiler} {CVerifier.StrictFlags}");
                CVerifier.CheckWarnings(outDir, compiler, integer);
            }
            var inputs = deployment.Inputs(examples);
            int n = deployment.Test.FeatureCount;
            Console.Error.WriteLine($"running {inputs.Length / n} {dataSpec} test examples on the host");
            var runs = new List<CRun> { CVerifier.Host(outDir, inputs, n, integer) };
            double? callgrind = null;
            if (verify == "qemu")
            {
                Console.Error.WriteLine("counting the host's instructions with valgrind --tool=callgrind");
                callgrind = CVerifier.Callgrind(outDir, inputs, n, integer);
            }
            if (verify == "qemu")
                foreach (var core in new[] { ArmCore.M7, ArmCore.M3 })
                {
                    Console.Error.WriteLine($"running them on {core.Name} ({core.Machine}) under qemu-system-arm");
                    runs.Add(CVerifier.Qemu(outDir, core, inputs, n, integer));
                }
            bool ok = true;
            foreach (var run in runs)
            {
                var check = deployment.Check(run);
                // the float program must predict as Coldmind does; the integer one must be its reference bit for bit (int8
                // activations may move a near tie, so its agreement with the float model is reported, not required)
                int sameAsHost = Enumerable.Range(0, run.Count)
                    .Count(e => integer ? run.Scores[e].SequenceEqual(runs[0].Scores[e]) : run.ArgMax(e, false) == runs[0].ArgMax(e, false));
                bool equal = (integer ? check.ExactScores : check.EqualPredictions) == check.Examples && sameAsHost == check.Examples;
                ok &= equal;
                report.Add(new
                {
                    target = run.Target, examples = check.Examples, equal_predictions = check.EqualPredictions, exact_scores = check.ExactScores, scores_equal_to_host = sameAsHost,
                    max_relative_score_error = check.MaxScoreError, flash_bytes = run.FlashBytes, static_ram_bytes = run.StaticRamBytes, stack_bytes = run.StackBytes,
                    instructions_per_inference = run.InstructionsPerInference, instructions_per_systick_tick = run.InstructionsPerTick,
                });
                if (!json)
                {
                    string line = $"{run.Target}: {check.EqualPredictions}/{check.Examples} predictions equal Coldmind's, {check.ExactScores}/{check.Examples} scores bit-exact to the reference, {sameAsHost} {(integer ? "scores" : "predictions")} equal to the host's"
                        + (integer ? "" : $", largest score error {check.MaxScoreError:G3} of the top score")
                        + (run.FlashBytes is { } flash ? $"; flash {flash:N0} B, RAM {run.StaticRamBytes + run.StackBytes:N0} B ({run.StaticRamBytes:N0} static + {run.StackBytes:N0} stack), {run.InstructionsPerInference:N0} instructions an inference" : "");
                    AnsiConsole.WriteLine(line);
                }
            }
            if (callgrind != null && !json) AnsiConsole.WriteLine($"host (x86-64, valgrind callgrind): {callgrind:N0} instructions an inference");
            if (json)
                Console.WriteLine(JsonOutput.Serialize(new { model = path, out_dir = outDir, fpu = fpuText, weight_bytes = deployment.Exporter.WeightBytes, arena_bytes = deployment.Exporter.ArenaBytes,
                    host_instructions_per_inference = callgrind, runs = report }));
            if (!ok) throw new ColdmindException(integer ? "The C build's integer scores differ from the reference (see above)." : "The C build's predictions differ from Coldmind's (see above).");
        }
        else if (json) Console.WriteLine(JsonOutput.Serialize(new { model = path, out_dir = outDir, fpu = fpuText, weight_bytes = deployment.Exporter.WeightBytes, arena_bytes = deployment.Exporter.ArenaBytes }));
        return 0;
    }
}
