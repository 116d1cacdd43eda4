namespace Coldmind.Numerics;

/// <summary>
/// How far a long job is: its stage ("teacher", "ticket round 2/3", "training"), the step within that stage out of
/// <see cref="Total"/> (0 when unknown), and a metric where one means something (the training loss). Library code
/// reports through <see cref="IProgress{T}"/> of this one type; the command line renders it on stderr.
/// </summary>
public readonly record struct StageProgress(string Stage, long Step, long Total, string? Metric = null, double Value = double.NaN);

/// <summary>Helpers to report <see cref="StageProgress"/> from code that knows only part of a job.</summary>
public static class ProgressReports
{
    /// <summary>Reports of <paramref name="inner"/> renamed to <paramref name="stage"/> (a trainer's steps as "student").</summary>
    public static IProgress<StageProgress>? As(this IProgress<StageProgress>? inner, string stage) =>
        inner == null ? null : new Relay(p => inner.Report(p with { Stage = stage }));

    /// <summary>A progress that calls <paramref name="report"/> on the reporting thread (no synchronisation context).</summary>
    public static IProgress<StageProgress> Of(Action<StageProgress> report) => new Relay(report);

    private sealed class Relay(Action<StageProgress> report) : IProgress<StageProgress>
    {
        public void Report(StageProgress value) => report(value);
    }
}
