using Spectre.Console;
using System.CommandLine;
using Coldmind.Cli.Options;
using Coldmind.Runtime.Lm;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind chat MODEL.gguf`: an interactive conversation. Each turn is wrapped in the model's chat format,
/// recognised from tokenizer.chat_template as llama.cpp does (ChatML, LLaMA-3, LLaMA-2, BitNet's), or a plain
/// "User:/Assistant:" exchange without one; the KV cache keeps the conversation, so each turn evaluates only
/// its own tokens. An empty line or end of input ends the chat; Ctrl-C stops the current answer.
/// </summary>
internal static class ChatCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "a GGUF language model (llama or bitnet)" };
        var count = new Option<int>("-n", "--n-predict") { Description = "most tokens per answer", DefaultValueFactory = _ => 256 };
        var system = new Option<string?>("--system") { Description = "a system message to start with" };
        var sampling = new SamplingOptions();
        var threads = CommonOptions.Threads();
        var cmd = new Command("chat", "Talk with a GGUF model (its chat template when it has one).") { model, count, system, threads };
        foreach (var o in sampling.All) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            CommonOptions.UseThreads(r.GetValue(threads));
            var sampler = sampling.Sampler(r);
            using var lm = LanguageModel.Load(r.GetValue(model)!);
            var session = lm.CreateSession(RunCommand.ContextLength(lm, r.GetValue(sampling.Context)));
            var format = ChatFormat.Detect(lm.Tokenizer.ChatTemplate);
            AnsiConsole.MarkupLineInterpolated($"[grey]{lm.Config.Architecture} model, {format.Name} chat format, context {session.ContextLength}. Empty line to quit.[/]");
            bool first = true;
            string? pending = r.GetValue(system) is { } s ? format.System(s) : null;
            while (true)
            {
                AnsiConsole.Markup("[bold]> [/]");
                string? line = Console.ReadLine();
                if (string.IsNullOrWhiteSpace(line)) return 0;
                string turn = (pending ?? "") + format.User(line);
                pending = null;
                var tokens = lm.Tokenizer.Encode(turn, addSpecial: first, parseSpecial: true);
                first = false;
                using var cancel = RunCommand.CancelOnCtrlC();
                var result = Generator.Generate(session, lm.Tokenizer, tokens, r.GetValue(count), sampler, piece => Console.Write(piece), cancel.Token);
                Console.WriteLine();
                RunCommand.PrintSpeed(result);
                if (result.StopReason == "end of text" && format.EndOfTurn.Length > 0)
                    session.Evaluate(lm.Tokenizer.Encode(format.EndOfTurn, addSpecial: false, parseSpecial: true).ToArray());
            }
        });
        return cmd;
    }
}

/// <summary>How one conversation turn is written for a model family.</summary>
internal sealed record ChatFormat(string Name, Func<string, string> System, Func<string, string> User, string EndOfTurn)
{
    public static ChatFormat Detect(string? template) => template switch
    {
        null => Plain,
        _ when template.Contains("<|im_start|>", StringComparison.Ordinal) => new("chatml",
            s => $"<|im_start|>system\n{s}<|im_end|>\n", u => $"<|im_start|>user\n{u}<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n"),
        _ when template.Contains("<|start_header_id|>", StringComparison.Ordinal) => new("llama3",
            s => $"<|start_header_id|>system<|end_header_id|>\n\n{s}<|eot_id|>",
            u => $"<|start_header_id|>user<|end_header_id|>\n\n{u}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
        _ when template.Contains("[INST]", StringComparison.Ordinal) => new("llama2", s => $"[INST] <<SYS>>\n{s}\n<</SYS>>\n\n", u => $"[INST] {u} [/INST]", "</s>"),
        _ when template.Contains("Assistant: ", StringComparison.Ordinal) && template.Contains("<|eot_id|>", StringComparison.Ordinal) => new("bitnet",
            s => $"System: {s}<|eot_id|>", u => $"User: {u}<|eot_id|>Assistant: ", "<|eot_id|>"),
        _ => Plain,
    };

    private static readonly ChatFormat Plain = new("plain", s => $"{s}\n\n", u => $"User: {u}\nAssistant:", "\n");
}
