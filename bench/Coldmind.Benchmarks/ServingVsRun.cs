using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text;
using Coldmind.Kernels;
using Coldmind.LmTraining;
using Coldmind.Numerics;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Serving;
using Coldmind.Shrink;

namespace Coldmind.Benchmarks;

/// <summary>
/// The OpenAI-compatible server against `coldmind run`'s own path (<see cref="Generator.Generate"/>) on the same
/// model, prompt and token count, greedy: time to first token, time to the whole answer and tokens/s over it at one
/// client, the pair alternated round by round (medians, ratios); then throughput with 1, 4 and 16 clients at once.
/// The server is real Kestrel on loopback in this process, read by streaming HTTP clients; its times run from
/// sending the request to the first text event and to [DONE]; run's from calling the generator to its first piece
/// and to its return, in one session reused as a slot reuses its own.
/// usage: serving-vs-run --model FILE.gguf [-n 64] [--rounds 5] [--clients 1,4,16] [--parallel 4] [--threads 2]
/// </summary>
internal static class ServingVsRun
{
    private const string Prompt = "Once upon a time, there was a little";

    public static int Run(string[] args)
    {
        string? Arg(string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();
        string modelPath = Arg("--model") ?? throw new ColdmindException("--model FILE.gguf is required.");
        int n = int.Parse(Arg("-n") ?? "64", CultureInfo.InvariantCulture), rounds = int.Parse(Arg("--rounds") ?? "5",
            CultureInfo.InvariantCulture);
        int parallel = int.Parse(Arg("--parallel") ?? "4", CultureInfo.InvariantCulture);
        var clients = (Arg("--clients") ?? "1,4,16").Split(',').Select(c => int.Parse(c,
            CultureInfo.InvariantCulture)).ToArray();
        int threads = Arg("--threads") is { } t
            ? int.Parse(t, CultureInfo.InvariantCulture) : Environment.ProcessorCount;
        WorkerPool.Shared = new WorkerPool(threads);

        using var client = ColdmindChatClient.Open(modelPath, new ChatClientSettings { Parallel = parallel,
            MaxTokens = n });
        var server = OpenAiServer.StartAsync(client, new OpenAiServerSettings { Listen = "127.0.0.1:0" },
            _ => { }).GetAwaiter().GetResult();
        using var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(10) };
        Console.WriteLine($"{Path.GetFileName(modelPath)}: prompt \"{Prompt}\", {n} tokens greedy, {threads} threads, "
            + $"{parallel} slots, {rounds} rounds, medians.");

        var prompt = client.EncodePrompt(Prompt);
        var direct = new List<(double Ttft, double Total, int Tokens)>();
        var served = new List<(double Ttft, double Total, int Tokens)>();
        var session = client.Model.CreateSession(client.ContextLength);
        Stream(http, n).GetAwaiter().GetResult(); // warm-up: connection, JIT of the HTTP path
        for (int round = 0; round < rounds; round++)
        {
            session.Reset();
            var clock = Stopwatch.StartNew();
            double first = -1;
            var result = Generator.Generate(session, client.Model.Tokenizer, prompt, n,
                new Sampler(new SamplerOptions(Temperature: 0, RepeatPenalty: 1)),
                _ => { if (first < 0) first = clock.Elapsed.TotalSeconds; });
            direct.Add((first, clock.Elapsed.TotalSeconds, result.Tokens.Count));
            served.Add(Stream(http, n).GetAwaiter().GetResult());
        }
        double Median(IEnumerable<double> v)
        {
            var a = v.Order().ToArray();
            return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
        }
        double rt = Median(direct.Select(d => d.Ttft)), st = Median(served.Select(d => d.Ttft));
        double rw = Median(direct.Select(d => d.Total)), sw = Median(served.Select(d => d.Total));
        double rr = Median(direct.Select(d => d.Tokens / d.Total)), sr = Median(served.Select(d => d.Tokens / d.Total));
        if (direct.Concat(served).Any(d => d.Tokens != n))
            Console.WriteLine("note: some answers ended before n tokens (end of text).");
        Console.WriteLine($"{"one client",-12} {"coldmind run",13} {"server",10} {"ratio",7}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{"TTFT ms",-12} {rt * 1e3,13:F2} {st * 1e3,10:F2} {st / rt,7:F3}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{"answer ms",-12} {rw * 1e3,13:F2} {sw * 1e3,10:F2} {sw / rw,7:F3}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{"tokens/s",-12} {rr,13:F1} {sr,10:F1} {sr / rr,7:F3}"));

        Console.WriteLine($"{"clients",7} {"tokens/s (all)",15} {"median TTFT ms",15} {"max TTFT ms",12} {"wall s",7}");
        foreach (int c in clients)
        {
            var runs = new List<(double Rate, double Ttft, double MaxTtft, double Wall)>();
            for (int round = 0; round < Math.Max(1, rounds / 2); round++)
            {
                var clock = Stopwatch.StartNew();
                var all = Task.WhenAll(Enumerable.Range(0, c).Select(_ => Stream(http, n))).GetAwaiter().GetResult();
                double wall = clock.Elapsed.TotalSeconds;
                runs.Add((all.Sum(a => a.Tokens) / wall, Median(all.Select(a => a.Ttft)), all.Max(a => a.Ttft), wall));
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{c,7} {Median(runs.Select(r => r.Rate)),15:F1} {Median(runs.Select(r => r.Ttft)) * 1e3,15:F1} "
                + $"{Median(runs.Select(r => r.MaxTtft)) * 1e3,12:F1} {Median(runs.Select(r => r.Wall)),7:F2}"));
        }
        server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return 0;
    }

    /// <summary>One streamed greedy completion: seconds to the first text event and to the end; its tokens.</summary>
    private static async Task<(double Ttft, double Total, int Tokens)> Stream(HttpClient http, int n)
    {
        var body = JsonSerializer.Serialize(new { prompt = Prompt, max_tokens = n, temperature = 0, stream = true,
            stream_options = new { include_usage = true } });
        var clock = Stopwatch.StartNew();
        using var request = new HttpRequestMessage(HttpMethod.Post,
            "v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using var reply = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        reply.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await reply.Content.ReadAsStreamAsync());
        double first = -1;
        int tokens = 0;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal)) continue;
            using var json = JsonDocument.Parse(line.AsMemory(6));
            // every chunk carries "usage": null but the last, which carries the counts
            if (json.RootElement.TryGetProperty("usage", out var usage) && usage.ValueKind == JsonValueKind.Object)
                tokens = usage.GetProperty("completion_tokens").GetInt32();
            else if (first < 0 && json.RootElement.GetProperty("choices")[0].GetProperty("text").GetString()
                is { Length: > 0 })
                first = clock.Elapsed.TotalSeconds;
        }
        return (first, clock.Elapsed.TotalSeconds, tokens);
    }
}
