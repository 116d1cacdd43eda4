using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Models;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind ptq MODEL.safetensors`: post-training quantization of a trained classifier under several
/// schemes (8/4/2-bit, ternary, binary; per tensor or per group), each weight matrix's error, and the test
/// accuracy the quantized model keeps. Biases and norm gains stay in float, as every deployment keeps them.
/// </summary>
internal static class PtqCommand
{
    private static readonly string[] DefaultSchemes =
        ["int8/tensor", "int8/g32", "int4/tensor", "int4/g32", "int2/g32", "ternary/tensor", "ternary/g32", "binary/tensor", "binary/g32"];

    public static Command Create()
    {
        var modelPath = new Argument<string>("MODEL") { Description = "a .safetensors checkpoint written by `coldmind train --out`" };
        var schemes = new Option<string[]>("--schemes")
        {
            Description = "METHOD/GROUP list, METHOD in int8, int4, int2, ternary, binary and GROUP 'tensor' or gN",
            AllowMultipleArgumentsPerToken = true,
            DefaultValueFactory = _ => DefaultSchemes,
        };
        var save = new Option<string?>("--save") { Description = "with one scheme: write the quantized (dequantized-float) checkpoint here" };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var cmd = new Command("ptq", "Quantize a trained model's weights after training; report each layer's error and the accuracy kept.") { modelPath, schemes, save, threads, json };
        cmd.SetAction(r =>
        {
            CommonOptions.UseThreads(r.GetValue(threads));
            string path = r.GetValue(modelPath)!;
            var chosen = r.GetValue(schemes)!.SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries)).Select(PtqScheme.Parse).ToArray();
            string? savePath = r.GetValue(save);
            if (savePath != null && chosen.Length != 1) throw new ColdmindException($"--save writes one quantized model; {chosen.Length} schemes were given.");
            if (savePath != null && !savePath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) throw new ColdmindException($"--save must name a .safetensors file, got '{savePath}'.");

            var checkpoint = TrainedCheckpoint.Load(path);
            var (file, spec, dataSpec, test) = (checkpoint.File, checkpoint.Spec, checkpoint.DataSpec, checkpoint.Test);
            var tensors = file.ToTensors();
            var matrices = tensors.Where(kv => kv.Value.Rank >= 2).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToArray();
            long matrixWeights = matrices.Sum(n => (long)tensors[n].Numel);
            long otherWeights = tensors.Where(kv => kv.Value.Rank < 2).Sum(kv => (long)kv.Value.Numel);

            float baseline = checkpoint.Accuracy();
            var results = new List<(PtqScheme Scheme, float Accuracy, long Bytes, Dictionary<string, double> Errors)>();
            ProgressView.Steps("quantizing and evaluating", chosen.Length, r.GetValue(json), tick =>
            {
                foreach (var scheme in chosen)
                {
                    var state = new Dictionary<string, Tensor>(tensors);
                    var errors = new Dictionary<string, double>();
                    foreach (var name in matrices)
                    {
                        var t = tensors[name];
                        var w = t.ToArray();
                        var q = scheme.Apply(w, t.Numel / t.Shape[0]);
                        errors[name] = QuantizationError.NormalizedRmse(w, q);
                        state[name] = Tensor.FromArray(q, t.Shape);
                    }
                    long bytes = (long)Math.Ceiling(matrixWeights * scheme.BitsPerWeight / 8) + 4 * otherWeights;
                    results.Add((scheme, checkpoint.Accuracy(state), bytes, errors));
                    if (savePath != null)
                    {
                        var meta = (Provenance.Read(file.Metadata, path) with { Ptq = scheme.Name }).ToMetadata();
                        TensorFile.Write(savePath, state.Select(kv => (kv.Key, kv.Value)), meta);
                    }
                    tick();
                }
            });

            long floatBytes = 4 * (matrixWeights + otherWeights);
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonOutput.Serialize(new
                {
                    model = path, data = dataSpec, examples = test.Count, float_accuracy = baseline, float_bytes = floatBytes,
                    schemes = results.Select(x => new
                    {
                        scheme = x.Scheme.Name, bits_per_weight = x.Scheme.BitsPerWeight, bytes = x.Bytes, test_accuracy = x.Accuracy,
                        layers = x.Errors.Select(e => new { name = e.Key, normalized_rmse = e.Value }),
                    }),
                }));
                return 0;
            }
            var summary = new Table().Border(TableBorder.Rounded).Title($"{Markup.Escape(spec.Describe())} on {Markup.Escape(dataSpec)} ({test.Count} test examples)")
                .AddColumns("scheme", "bits/weight", "bytes", "smaller", "test accuracy", "vs float");
            summary.AddRow("float32", "32", floatBytes.ToString("N0", CultureInfo.InvariantCulture), "1.0×", $"{baseline:P2}", "");
            foreach (var x in results)
                summary.AddRow(x.Scheme.Name, x.Scheme.BitsPerWeight.ToString("0.###", CultureInfo.InvariantCulture), x.Bytes.ToString("N0", CultureInfo.InvariantCulture),
                    $"{(double)floatBytes / x.Bytes:F1}×", $"{x.Accuracy:P2}", $"{100 * (x.Accuracy - baseline):+0.00;−0.00} pt");
            AnsiConsole.Write(summary);
            var layers = new Table().Border(TableBorder.Rounded).Title("normalized RMSE of each weight matrix").AddColumn("scheme");
            foreach (var name in matrices) layers.AddColumn(Markup.Escape(name));
            foreach (var x in results)
                layers.AddRow([x.Scheme.Name, .. matrices.Select(name => x.Errors[name].ToString("0.0000", CultureInfo.InvariantCulture))]);
            AnsiConsole.Write(layers);
            if (savePath != null) AnsiConsole.MarkupLineInterpolated($"Wrote [bold]{savePath}[/] ({chosen[0].Name}).");
            return 0;
        });
        return cmd;
    }
}
