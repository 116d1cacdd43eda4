using System.CommandLine;
using Coldmind;
using Coldmind.Cli.Commands;
using Spectre.Console;

var root = new RootCommand("""
    Coldmind: train, shrink, run and cost neural networks for the edge.
    Start with `coldmind train` (digits, embedded) or `coldmind train --data fashion-mnist --model cnn`.
    """)
{
    TrainCommand.Create(),
    EvalCommand.Create(),
    QuantizeCommand.Create(),
    PtqCommand.Create(),
    InspectCommand.Create(),
};

// Plain text when piped into a file or another program (logs, CI); colours and live progress on a terminal.
if (Console.IsOutputRedirected) AnsiConsole.Console.Profile.Capabilities.Ansi = false;

try
{
    return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (ColdmindException e)
{
    AnsiConsole.Console.Profile.Out = new AnsiConsoleOutput(Console.Error);
    AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {e.Message}");
    return 1;
}
