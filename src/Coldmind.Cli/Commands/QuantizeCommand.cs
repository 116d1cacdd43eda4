using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Formats;
using Coldmind.Models;
using Coldmind.Quantization;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind quantize IN --type T --out OUT.gguf`: packs every matrix (2 or more dimensions, rows of whole
/// blocks) as T and keeps 1-D tensors (norms, biases) as they are, like llama.cpp's quantizer; the token
/// embedding and output head go to Q6_K when T is smaller (llama.cpp's choice: they are the most
/// sensitive tensors). Reports the error each tensor takes.
/// </summary>
internal static class QuantizeCommand
{
    /// <summary>llama.cpp's general.file_type (LLAMA_FTYPE_*) for a file whose matrices are all of one type.</summary>
    private static readonly Dictionary<GgmlType, uint> FileTypes = new()
    {
        [GgmlType.F32] = 0, [GgmlType.F16] = 1, [GgmlType.Q4_0] = 2, [GgmlType.Q8_0] = 7, [GgmlType.Q6_K] = 18,
        [GgmlType.BF16] = 32, [GgmlType.TQ1_0] = 36, [GgmlType.TQ2_0] = 37,
    };

    private sealed record Source(string Name, long[] Dims, GgmlType Type, Func<float[]> Values, Func<byte[]> Raw);

    public static Command Create()
    {
        var input = new Argument<string>("IN") { Description = "a .gguf or .safetensors file with float tensors" };
        var type = new Option<string>("--type") { Description = "target type: " + string.Join(", ", GgmlTypes.Supported.Select(t => t.Name.ToLowerInvariant())), Required = true };
        var output = new Option<string>("--out") { Description = "the .gguf file to write", Required = true };
        var head = new Option<string>("--head-type")
        {
            Description = "type for token_embd.weight and output.weight: auto (q6_k when --type is smaller, as llama.cpp does) or a type name",
            DefaultValueFactory = _ => "auto",
        };
        var json = CommonOptions.Json();
        var cmd = new Command("quantize", "Pack a model's matrices into a ggml type and write GGUF; report each tensor's error.") { input, type, output, head, json };
        cmd.SetAction(r =>
        {
            string inPath = r.GetValue(input)!, outPath = r.GetValue(output)!;
            if (!outPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) throw new ColdmindException($"--out must name a .gguf file, got '{outPath}'.");
            var target = GgmlTypes.Parse(r.GetValue(type)!);
            var q6k = GgmlTypes.Traits(GgmlType.Q6_K);
            string headSpec = r.GetValue(head)!;
            var headType = headSpec == "auto" ? (target.BitsPerWeight < q6k.BitsPerWeight ? q6k : target) : GgmlTypes.Parse(headSpec);
            var writer = new GgufWriter();
            GgufFile? gguf = null;
            List<Source> sources;
            try
            {
                var opened = ModelFile.Open(inPath);
                if (opened is SafetensorsModelFile { File: var st })
                {
                    writer.Set("general.name", GgufValue.Of(Path.GetFileNameWithoutExtension(inPath)));
                    foreach (var (k, v) in st.Metadata) writer.Set(k, GgufValue.Of(v));
                    // safetensors shapes are row-major outermost-first; ggml's dims are innermost-first.
                    sources = st.Arrays.Select(kv => new Source(kv.Key, kv.Value.Shape.Reverse().Select(d => (long)d).ToArray(), GgmlType.F32,
                        () => kv.Value.Values, () => GgmlTypes.Traits(GgmlType.F32).Quantize(kv.Value.Values))).ToList();
                }
                else
                {
                    if (opened is not GgufModelFile) throw opened.NotA("a set of tensors to quantize");
                    gguf = GgufFile.Open(inPath);
                    foreach (var (k, v) in gguf.Metadata) writer.Set(k, v);
                    var file = gguf;
                    sources = gguf.Tensors.Select(t => new Source(t.Name, t.Dims, t.Type, () => file.ReadFloats(t), () => file.Data(t).ToArray())).ToList();
                }
                writer.Set("general.quantization_version", GgufValue.Of(2u));
                if (FileTypes.TryGetValue(target.Type, out uint fileType)) writer.Set("general.file_type", GgufValue.Of(fileType));

                var rows = new List<(string Name, string From, string To, long Before, long After, double Rmse)>();
                foreach (var s in sources)
                {
                    var from = GgmlTypes.Traits(s.Type);
                    var to = s.Name is "token_embd.weight" or "output.weight" ? headType : target;
                    long count = s.Dims.Aggregate(1L, (a, b) => a * b);
                    bool pack = s.Dims.Length >= 2 && s.Dims[0] % to.BlockSize == 0 && from.CanUnpack;
                    if (!pack)
                    {
                        writer.AddTensor(s.Name, s.Dims, s.Type, s.Raw());
                        rows.Add((s.Name, from.Name, from.Name, from.ByteCount(count), from.ByteCount(count), 0));
                        continue;
                    }
                    var values = s.Values();
                    var blocks = to.Quantize(values);
                    writer.AddTensor(s.Name, s.Dims, to.Type, blocks);
                    rows.Add((s.Name, from.Name, to.Name, from.ByteCount(count), blocks.Length, QuantizationError.NormalizedRmse(values, to.Dequantize(blocks, values.Length))));
                }
                writer.Write(outPath);
                long before = rows.Sum(x => x.Before), after = rows.Sum(x => x.After);
                if (r.GetValue(json))
                {
                    Console.WriteLine(JsonOutput.Serialize(new
                    {
                        input = inPath, output = outPath, type = target.Name, bytes_before = before, bytes_after = after,
                        tensors = rows.Select(x => new { name = x.Name, from = x.From, to = x.To, bytes_before = x.Before, bytes_after = x.After, normalized_rmse = x.Rmse }),
                    }));
                    return 0;
                }
                var table = new Table().Border(TableBorder.Rounded).AddColumns("tensor", "from", "to", "bytes before", "bytes after", "normalized RMSE");
                foreach (var x in rows)
                    table.AddRow(Markup.Escape(x.Name), x.From, x.To, x.Before.ToString("N0", CultureInfo.InvariantCulture), x.After.ToString("N0", CultureInfo.InvariantCulture),
                        x.From == x.To ? "kept" : x.Rmse.ToString("0.0000", CultureInfo.InvariantCulture));
                AnsiConsole.Write(table);
                AnsiConsole.MarkupLineInterpolated($"Wrote [bold]{outPath}[/]: {before:N0} → {after:N0} bytes ({(double)before / Math.Max(after, 1):F2}× smaller).");
                return 0;
            }
            finally { gguf?.Dispose(); }
        });
        return cmd;
    }
}
