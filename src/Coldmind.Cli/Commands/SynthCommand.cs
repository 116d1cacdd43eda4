using Spectre.Console;
using System.CommandLine;
using Coldmind.Cli.Output;
using Coldmind.Numerics;
using Coldmind.Quantization;
using Coldmind.Runtime.Lm;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind synth --arch bitnet --shape 2b4t --type tq2_0 --out F.gguf`: a random-weight model of a real shape, for speed comparisons.</summary>
internal static class SynthCommand
{
    public static Command Create()
    {
        var arch = new Option<string>("--arch") { Description = "bitnet or llama", DefaultValueFactory = _ => "bitnet" };
        var shape = new Option<string>("--shape") { Description = "2b4t (BitNet b1.58 2B4T: 2560 hidden, 30 layers, FFN 6912, 20/5 heads, vocab 128256), small or tiny", DefaultValueFactory = _ => "2b4t" };
        var type = new Option<string>("--type") { Description = "type of the linear weights, e.g. tq2_0, tq1_0, q4_0, q8_0", DefaultValueFactory = _ => "tq2_0" };
        var embed = new Option<string>("--embed-type") { Description = "type of the token embedding and output head (q6_k, as llama.cpp writes them; f16 also works)", DefaultValueFactory = _ => "q6_k" };
        var seed = new Option<ulong>("--seed") { Description = "seed of the random weights", DefaultValueFactory = _ => 0UL };
        var output = new Option<string>("--out") { Description = "the .gguf file to write", Required = true };
        var cmd = new Command("synth", "Write a random-weight GGUF model of a real shape (speed does not depend on the values).") { arch, shape, type, embed, seed, output };
        cmd.SetAction(r =>
        {
            string outPath = r.GetValue(output)!;
            if (!outPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) throw new ColdmindException($"--out must name a .gguf file, got '{outPath}'.");
            var architecture = r.GetValue(arch) switch
            {
                "bitnet" => Architecture.BitNet,
                "llama" => Architecture.Llama,
                var a => throw new ColdmindException($"Unknown --arch '{a}'; choose bitnet or llama."),
            };
            var s = ModelShape.Parse(r.GetValue(shape)!);
            var linear = GgmlTypes.Parse(r.GetValue(type)!);
            var embedding = GgmlTypes.Parse(r.GetValue(embed)!);
            if (s.Hidden % linear.BlockSize != 0 || s.FeedForward % linear.BlockSize != 0 || s.Hidden % embedding.BlockSize != 0)
                throw new ColdmindException($"The {s.Name} shape's rows ({s.Hidden}, {s.FeedForward}) are not whole {linear.Name}/{embedding.Name} blocks.");
            ProgressView.Run(Console.IsOutputRedirected, progress =>
                SyntheticModel.Write(outPath, architecture, s, linear.Type, embedding.Type, r.GetValue(seed), progress.As($"writing {s.Name}")));
            AnsiConsole.MarkupLineInterpolated($"Wrote [bold]{outPath}[/]: {r.GetValue(arch)} {s.Name}, {linear.Name} linear weights, {embedding.Name} embedding, {new FileInfo(outPath).Length / 1e9:F2} GB.");
            return 0;
        });
        return cmd;
    }
}
