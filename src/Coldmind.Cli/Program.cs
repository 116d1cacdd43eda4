using Spectre.Console;
using System.CommandLine;
using Coldmind.Cli.Commands;
using Coldmind;

var root = new RootCommand("""
    Coldmind: train, shrink, run and cost neural networks for the edge.
    Start with `coldmind shrink` (digits, embedded): teacher → distilled student → lottery ticket → ternary.
    """)
{
    ShrinkCommand.Create(),
    PredictCommand.Create(),
    LotteryCommand.Create(),
    SearchCommand.Create(),
    CostCommand.Create(),
    ModalCommand.Create(),
    DevicesCommand.Create(),
    CascadeCommand.Create(),
    ServeCommand.Create(),
    AdaptCommand.Create(),
    SwarmCommand.Create(),
    NodeCommand.Create(),
    CoordinatorCommand.Create(),
    KeyCommand.Create(),
    ContinualCommand.Create(),
    MergeCommand.Create(),
    EvolveCommand.Create(),
    TrainCommand.Create(),
    EvalCommand.Create(),
    QuantizeCommand.Create(),
    PtqCommand.Create(),
    ExportCommand.Create(),
    InspectCommand.Create(),
    RunCommand.Create(),
    ChatCommand.Create(),
    BenchCommand.Create(),
    SynthCommand.Create(),
    TrainLmCommand.Create(),
    ImportCommand.Create(),
};

// Plain text when piped into a file or another program (logs, CI); colours and live progress on a terminal. Off a
// terminal tables take COLUMNS when it is set, else a width wide enough that no cell wraps (a number split across
// lines would read as two numbers).
if (Console.IsOutputRedirected)
{
    AnsiConsole.Console.Profile.Capabilities.Ansi = false;
    AnsiConsole.Console.Profile.Width = int.TryParse(Environment.GetEnvironmentVariable("COLUMNS"), out int columns) && columns > 0 ? columns : 240;
}

try
{
    return root.Parse(args).Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception e) when (e is ColdmindException or IOException or UnauthorizedAccessException)
{
    return Fail(e.Message, 1);
}
catch (Exception e) when (Environment.GetEnvironmentVariable("COLDMIND_DEBUG") == null)
{
    // A bug of ours: one line, not a stack dump; COLDMIND_DEBUG=1 shows the trace.
    return Fail($"internal error ({e.GetType().Name}: {e.Message}); please report it, with COLDMIND_DEBUG=1 for the trace.", 70);
}

static int Fail(string message, int code)
{
    // unwrapped when piped, so logs and scripts see the whole message on one line
    if (Console.IsErrorRedirected) Console.Error.WriteLine($"error: {message}");
    else
    {
        AnsiConsole.Console.Profile.Out = new AnsiConsoleOutput(Console.Error);
        AnsiConsole.MarkupLineInterpolated($"[red]error:[/] {message}");
    }
    return code;
}
