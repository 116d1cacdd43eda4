using Spectre.Console;
using System.CommandLine;
using Coldmind.Cli.Options;
using Coldmind.Runtime.Lm;
using Coldmind.Serving;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind chat MODEL.gguf`: an interactive conversation. Each turn is wrapped in the model's chat format,
/// written by Coldmind.Serving's ChatTemplate (from tokenizer.chat_template, as llama.cpp does, or a plain
/// "User:/Assistant:" exchange); the KV cache keeps the conversation, so each turn evaluates only
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
            var format = ChatTemplate.Detect(lm.Tokenizer.ChatTemplate);
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
