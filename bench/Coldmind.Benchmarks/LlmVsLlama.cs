using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Coldmind.Numerics;
using Coldmind.Runtime.Lm;

namespace Coldmind.Benchmarks;

/// <summary>
/// Coldmind's runtime and llama.cpp's llama-bench side by side on the same GGUF file, in one run: for each
/// thread count, llama-bench then Coldmind, the pair repeated (the machine drifts; medians of the rounds are
/// reported), pp and tg tokens/s, their ratio, and generation as a share of the roofline (read bandwidth
/// measured in the same run ÷ bytes a token reads).
/// usage: llm-vs-llama --llama-bench PATH --model FILE.gguf [-p 128] [-n 64] [--threads 1,2] [--rounds 3]
/// </summary>
internal static class LlmVsLlama
{
    public static int Run(string[] args)
    {
        string? Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        string peer = Arg("--llama-bench") ?? throw new ColdmindException("--llama-bench PATH (a llama-bench built under /tmp) is required.");
        string modelPath = Arg("--model") ?? throw new ColdmindException("--model FILE.gguf is required.");
        int p = int.Parse(Arg("-p") ?? "128", CultureInfo.InvariantCulture), n = int.Parse(Arg("-n") ?? "64", CultureInfo.InvariantCulture);
        int rounds = int.Parse(Arg("--rounds") ?? "3", CultureInfo.InvariantCulture);
        var threads = (Arg("--threads") ?? "1,2").Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray();

        using var model = LanguageModel.Load(modelPath);
        Console.WriteLine($"{Path.GetFileName(modelPath)}: {model.FileBytes / 1e9:F2} GB, {model.BytesPerToken / 1e6:F0} MB read per token; pp{p}, tg{n}, {rounds} rounds, medians.");
        Console.WriteLine($"{"threads",7} {"test",6} {"llama.cpp",10} {"Coldmind",9} {"ratio",6} {"roofline",9} {"llama %",8} {"ours %",7}");
        foreach (int t in threads)
        {
            WorkerPool.Shared = new WorkerPool(t);
            var ours = new List<(double Pp, double Tg)>();
            var theirs = new List<(double Pp, double Tg)>();
            var roofline = new List<double>();
            for (int round = 0; round < rounds; round++)
            {
                theirs.Add(LlamaBench(peer, modelPath, p, n, t));
                var (pp, tg) = ModelBenchmark.Measure(model, p, n, 3);
                ours.Add((pp ?? 0, tg ?? 0));
                roofline.Add(MemoryBandwidth.Measure(WorkerPool.Shared) * 1e9 / model.BytesPerToken);
            }
            double roof = Timing.Median(roofline);
            Row(t, $"pp{p}", Timing.Median(theirs.Select(x => x.Pp)), Timing.Median(ours.Select(x => x.Pp)), null);
            Row(t, $"tg{n}", Timing.Median(theirs.Select(x => x.Tg)), Timing.Median(ours.Select(x => x.Tg)), roof);
        }
        return 0;
    }

    private static void Row(int threads, string test, double theirs, double ours, double? roof) =>
        Console.WriteLine($"{threads,7} {test,6} {theirs,10:F1} {ours,9:F1} {ours / theirs,5:F2}× " +
            (roof is { } r ? $"{r,9:F1} {100 * theirs / r,7:F0}% {100 * ours / r,6:F0}%" : ""));

    /// <summary>One llama-bench run (-r 3, its own mean of 3): pp and tg tokens/s from its JSON output.</summary>
    private static (double Pp, double Tg) LlamaBench(string exe, string model, int p, int n, int threads)
    {
        var info = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-m", model, "-p", p.ToString(CultureInfo.InvariantCulture), "-n", n.ToString(CultureInfo.InvariantCulture), "-t", threads.ToString(CultureInfo.InvariantCulture), "-r", "3", "-o", "json" })
            info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new ColdmindException($"llama-bench failed ({process.ExitCode}): {stderr.Result}");
        using var json = JsonDocument.Parse(stdout);
        double pp = 0, tg = 0;
        foreach (var test in json.RootElement.EnumerateArray())
        {
            double ts = test.GetProperty("avg_ts").GetDouble();
            if (test.GetProperty("n_prompt").GetInt32() > 0) pp = ts; else tg = ts;
        }
        return (pp, tg);
    }
}
