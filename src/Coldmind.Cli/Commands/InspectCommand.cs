using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Formats;
using Coldmind.Models;
using Coldmind.Quantization;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind inspect FILE`: metadata and tensors (type, shape, bytes, bits per weight) of a GGUF or safetensors file.</summary>
internal static class InspectCommand
{
    private sealed record Row(string Name, string Type, long[] Shape, long Bytes, double BitsPerWeight);

    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "a .gguf or .safetensors file" };
        var json = CommonOptions.Json();
        var cmd = new Command("inspect", "Show a model file's metadata and tensors: types, shapes, bytes, bits per weight.") { file, json };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(file)!;
            var (format, metadata, rows) = ModelFile.Open(path) switch
            {
                SafetensorsModelFile st => ReadSafetensors(st),
                GgufModelFile => ReadGguf(path),
                var other => throw other.NotA("a file of tensors"),
            };
            long weights = rows.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)), bytes = rows.Sum(t => t.Bytes);
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonOutput.Serialize(new
                {
                    file = path, format, metadata, parameters = weights, tensor_bytes = bytes,
                    bits_per_weight = weights == 0 ? 0 : 8.0 * bytes / weights,
                    tensors = rows.Select(t => new { name = t.Name, type = t.Type, shape = t.Shape, bytes = t.Bytes, bits_per_weight = t.BitsPerWeight }),
                }));
                return 0;
            }
            AnsiConsole.MarkupLineInterpolated($"[bold]{path}[/]: {format}, {rows.Count} tensors, {weights:N0} weights in {bytes:N0} bytes ({(weights == 0 ? 0 : 8.0 * bytes / weights):F3} bits per weight)");
            var meta = new Table().Border(TableBorder.Rounded).AddColumns("metadata", "value");
            foreach (var (k, v) in metadata) meta.AddRow(Markup.Escape(k), Markup.Escape(v.Length > 100 ? v[..100] + "…" : v));
            if (metadata.Count > 0) AnsiConsole.Write(meta);
            var table = new Table().Border(TableBorder.Rounded).AddColumns("tensor", "type", "shape", "bytes", "bits/weight");
            foreach (var t in rows)
                table.AddRow(Markup.Escape(t.Name), t.Type, Markup.Escape("[" + string.Join(", ", t.Shape) + "]"), t.Bytes.ToString("N0", CultureInfo.InvariantCulture), t.BitsPerWeight.ToString("0.####", CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
            return 0;
        });
        return cmd;
    }

    /// <summary>GGUF shapes are shown in ggml order (row length first), as llama.cpp prints them.</summary>
    private static (string, Dictionary<string, string>, List<Row>) ReadGguf(string path)
    {
        using var f = GgufFile.Open(path);
        var metadata = f.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value.ToString());
        var rows = f.Tensors.Select(t => new Row(t.Name, GgmlTypes.Traits(t.Type).Name, t.Dims, t.ByteCount, GgmlTypes.Traits(t.Type).BitsPerWeight)).ToList();
        return ($"GGUF v{f.Version}, alignment {f.Alignment}", metadata, rows);
    }

    private static (string, Dictionary<string, string>, List<Row>) ReadSafetensors(SafetensorsModelFile file)
    {
        var f = file.File;
        var rows = f.Arrays.Select(kv =>
        {
            int bits = 8 * Safetensors.ElementSize(f.DTypes[kv.Key])!.Value;
            return new Row(kv.Key, f.DTypes[kv.Key], kv.Value.Shape.Select(d => (long)d).ToArray(), (long)kv.Value.Values.Length * bits / 8, bits);
        }).ToList();
        return ("safetensors", f.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value), rows);
    }
}
