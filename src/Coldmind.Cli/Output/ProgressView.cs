using System.Diagnostics;
using System.Globalization;
using Coldmind.Numerics;
using Spectre.Console;

namespace Coldmind.Cli.Output;

/// <summary>
/// The one renderer of <see cref="StageProgress"/>, always on stderr so stdout keeps only results: on a terminal a
/// live bar per stage (with its loss when there is one); elsewhere (a log, a pipe, CI) one line when a stage starts,
/// one every few seconds while it runs and one when it ends.
/// </summary>
internal sealed class ProgressView : IProgress<StageProgress>
{
    private static readonly TimeSpan LineEvery = TimeSpan.FromSeconds(5);
    private readonly Lock _gate = new();
    private readonly ProgressContext? _live;
    private ProgressTask? _task;
    private string? _stage;
    private StageProgress _last;
    private readonly Stopwatch _sinceLine = new(), _inStage = new();

    private ProgressView(ProgressContext? live) => _live = live;

    /// <summary>Runs <paramref name="work"/> with a view of what it reports; with <paramref name="quiet"/> (--json) nothing is shown.</summary>
    public static void Run(bool quiet, Action<IProgress<StageProgress>> work)
    {
        if (quiet)
        {
            work(ProgressReports.Of(_ => { }));
            return;
        }
        if (Console.IsErrorRedirected)
        {
            var view = new ProgressView(null);
            work(view);
            view.EndStage();
            return;
        }
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx => work(new ProgressView(ctx)));
    }

    /// <summary>For work that counts its own steps: <paramref name="steps"/> calls of tick make up <paramref name="stage"/>.</summary>
    public static void Steps(string stage, int steps, bool quiet, Action<Action> work) =>
        Run(quiet, progress =>
        {
            long done = 0;
            progress.Report(new StageProgress(stage, 0, steps));
            work(() => progress.Report(new StageProgress(stage, ++done, steps)));
        });

    public void Report(StageProgress p)
    {
        lock (_gate)
        {
            if (p.Stage != _stage) StartStage(p);
            _last = p;
            if (_live != null)
            {
                _task!.MaxValue = Math.Max(1, p.Total);
                _task.Value = p.Total > 0 ? p.Step : 0;
                _task.Description = Markup.Escape(Describe(p, withCount: false));
            }
            else if (_sinceLine.Elapsed >= LineEvery && p.Step < p.Total)
            {
                Console.Error.WriteLine(Describe(p, withCount: true));
                _sinceLine.Restart();
            }
        }
    }

    private void StartStage(StageProgress p)
    {
        EndStage();
        _stage = p.Stage;
        _inStage.Restart();
        _sinceLine.Restart();
        if (_live != null) _task = _live.AddTask(Markup.Escape(p.Stage), maxValue: Math.Max(1, p.Total));
        else Console.Error.WriteLine($"{p.Stage}…");
    }

    private void EndStage()
    {
        if (_stage == null) return;
        if (_live != null) _task!.Value = _task.MaxValue;
        else
        {
            string steps = _last.Total > 0 ? $"{_last.Step} steps, " : "";
            string metric = _last.Metric != null ? $", {_last.Metric} {_last.Value.ToString("G4", CultureInfo.InvariantCulture)}" : "";
            Console.Error.WriteLine($"{_stage}: done ({steps}{_inStage.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)} s{metric})");
        }
        _stage = null;
    }

    private static string Describe(StageProgress p, bool withCount)
    {
        string text = p.Stage;
        if (withCount && p.Total > 0) text += $": {p.Step}/{p.Total} ({100.0 * p.Step / p.Total:F0} %)";
        if (p.Metric != null) text += $"{(withCount ? "," : "")} {p.Metric} {p.Value.ToString("F4", CultureInfo.InvariantCulture)}";
        return text;
    }
}
