using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Numerics;
using Coldmind.Runtime.Lm;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind bench MODEL.gguf`: prompt processing (pp: one batch of P tokens) and token generation (tg: N
/// single-token steps) in tokens/s, like llama-bench, each the median of several repetitions on a fresh
/// context. Generation reads every weight once a token, so beside it stands the roofline: the read bandwidth
/// measured in the same run divided by the bytes a token reads, and how close generation comes to it.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "a GGUF language model (llama or bitnet)" };
        var prompt = new Option<int>("-p", "--n-prompt") { Description = "prompt tokens (pp test; 0 skips it)", DefaultValueFactory = _ => 128 };
        var gen = new Option<int>("-n", "--n-gen") { Description = "generated tokens (tg test; 0 skips it)", DefaultValueFactory = _ => 64 };
        var reps = new Option<int>("-r", "--repetitions") { Description = "repetitions of each test (the median is reported)", DefaultValueFactory = _ => 3 };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var cmd = new Command("bench", "Measure prompt and generation tokens/s, and the bandwidth roofline of generation.") { model, prompt, gen, reps, threads, json };
        cmd.SetAction(r =>
        {
            CommonOptions.UseThreads(r.GetValue(threads));
            int p = r.GetValue(prompt), n = r.GetValue(gen), repetitions = r.GetValue(reps);
            using var lm = LanguageModel.Load(r.GetValue(model)!);
            double? pp = null, tg = null;
            ProgressView.Run(r.GetValue(json), progress => (pp, tg) = ModelBenchmark.Measure(lm, p, n, repetitions, progress));
            double bandwidth = MemoryBandwidth.Measure(WorkerPool.Shared);
            double roofline = bandwidth * 1e9 / lm.BytesPerToken;
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonOutput.Serialize(new
                {
                    model = lm.Path, architecture = lm.Config.Architecture.ToString().ToLowerInvariant(), threads = WorkerPool.Shared.Threads,
                    file_bytes = lm.FileBytes, bytes_per_token = lm.BytesPerToken, n_prompt = p, n_gen = n,
                    pp_tokens_per_second = pp, tg_tokens_per_second = tg, bandwidth_gb_per_second = bandwidth,
                    roofline_tokens_per_second = roofline, tg_percent_of_roofline = tg / roofline * 100,
                }));
                return 0;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("model", "size", "threads", "test", "tokens/s", "roofline");
            string name = Markup.Escape(Path.GetFileName(lm.Path)), size = $"{lm.FileBytes / 1e9:F2} GB";
            if (pp is { } ppv) table.AddRow(name, size, WorkerPool.Shared.Threads.ToString(CultureInfo.InvariantCulture), $"pp{p}", $"{ppv:F1}", "");
            if (tg is { } tgv) table.AddRow(name, size, WorkerPool.Shared.Threads.ToString(CultureInfo.InvariantCulture), $"tg{n}", $"{tgv:F1}", $"{100 * tgv / roofline:F0} % of {roofline:F1}");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLineInterpolated($"[grey]roofline: {bandwidth:F1} GB/s read (measured now) ÷ {lm.BytesPerToken / 1e6:F0} MB of weights per token = {roofline:F1} tokens/s[/]");
            return 0;
        });
        return cmd;
    }
}
