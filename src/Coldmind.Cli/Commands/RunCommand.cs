using Spectre.Console;
using System.CommandLine;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Runtime.Lm;

namespace Coldmind.Cli.Commands;

/// <summary>Sampling options shared by `run` and `chat`.</summary>
internal sealed class SamplingOptions
{
    public Option<float> Temperature { get; } = new("--temp") { Description = "sampling temperature; 0 is greedy", DefaultValueFactory = _ => 0.8f };
    public Option<int> TopK { get; } = new("--top-k") { Description = "keep the k most likely tokens (0: all)", DefaultValueFactory = _ => 40 };
    public Option<float> TopP { get; } = new("--top-p") { Description = "keep the most likely tokens up to this probability", DefaultValueFactory = _ => 0.95f };
    public Option<float> RepeatPenalty { get; } = new("--repeat-penalty") { Description = "divide the scores of recent tokens (1: off)", DefaultValueFactory = _ => 1.1f };
    public Option<int> RepeatLastN { get; } = new("--repeat-last-n") { Description = "how many recent tokens the penalty looks at", DefaultValueFactory = _ => 64 };
    public Option<ulong> Seed { get; } = new("--seed") { Description = "seed of the sampler (same seed, same text)", DefaultValueFactory = _ => 0UL };
    public Option<int?> Context { get; } = new("--ctx") { Description = "context length in tokens (default: the model's)" };

    public IEnumerable<Option> All => [Temperature, TopK, TopP, RepeatPenalty, RepeatLastN, Seed, Context];

    public Sampler Sampler(ParseResult r) => new(new SamplerOptions(r.GetValue(Temperature), r.GetValue(TopK), r.GetValue(TopP),
        r.GetValue(RepeatPenalty), r.GetValue(RepeatLastN), r.GetValue(Seed)));
}

/// <summary>`coldmind run MODEL.gguf -p PROMPT -n N`: stream a completion, then the prompt and generation speeds.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "a GGUF language model (llama or bitnet)" };
        var prompt = new Option<string>("--prompt", "-p") { Description = "the text to continue", DefaultValueFactory = _ => "" };
        var count = new Option<int>("-n", "--n-predict") { Description = "tokens to generate", DefaultValueFactory = _ => 128 };
        var sampling = new SamplingOptions();
        var noRepack = new Option<bool>("--no-repack") { Description = "multiply TQ1_0/TQ2_0 matrices in their GGUF layout with Q8_K activations, as llama.cpp does, instead of repacking them" };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var cmd = new Command("run", "Generate text with a GGUF model, streaming it, then print tokens/s.") { model, prompt, count, noRepack, threads, json };
        foreach (var o in sampling.All) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            CommonOptions.UseThreads(r.GetValue(threads));
            var sampler = sampling.Sampler(r);
            using var lm = LanguageModel.Load(r.GetValue(model)!, repackTernary: !r.GetValue(noRepack));
            var session = lm.CreateSession(ContextLength(lm, r.GetValue(sampling.Context)));
            var tokens = lm.Tokenizer.Encode(r.GetValue(prompt)!);
            bool asJson = r.GetValue(json);
            using var cancel = CancelOnCtrlC();
            if (!asJson) Console.Write(r.GetValue(prompt));
            var result = Generator.Generate(session, lm.Tokenizer, tokens, r.GetValue(count), sampler,
                asJson ? null : piece => Console.Write(piece), cancel.Token);
            if (asJson)
            {
                Console.WriteLine(JsonOutput.Serialize(new
                {
                    model = lm.Path, text = result.Text, tokens = result.Tokens, prompt_tokens = result.Prompt.Count,
                    prompt_tokens_per_second = result.PromptTokensPerSecond, generation_tokens_per_second = result.GenerationTokensPerSecond,
                    stop = result.StopReason,
                }));
                return 0;
            }
            Console.WriteLine();
            PrintSpeed(result);
            return 0;
        });
        return cmd;
    }

    internal static int ContextLength(LanguageModel lm, int? requested)
    {
        int n = requested ?? lm.Config.ContextLength;
        if (n < 1) throw new ColdmindException($"--ctx must be at least 1, got {n}.");
        return n;
    }

    internal static void PrintSpeed(GenerationResult result)
    {
        var err = new AnsiConsoleOutput(Console.Error);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = err, Ansi = Console.IsErrorRedirected ? AnsiSupport.No : AnsiSupport.Detect });
        console.MarkupLineInterpolated($"[grey]prompt: {result.Prompt.Count} tokens, {result.PromptTokensPerSecond:F1} tokens/s · generation: {result.Tokens.Count} tokens, {result.GenerationTokensPerSecond:F1} tokens/s · stopped: {result.StopReason}[/]");
    }

    /// <summary>Ctrl-C stops the generation cleanly (the text so far and the speeds are still printed); a second one exits.</summary>
    internal static CancellationTokenSource CancelOnCtrlC()
    {
        var source = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            if (source.IsCancellationRequested) return;
            e.Cancel = true;
            source.Cancel();
        };
        return source;
    }
}
