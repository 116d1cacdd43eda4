using System.Diagnostics;

namespace Coldmind.Numerics;

/// <summary>Medians of repeated timings, for benchmarks and calibration: machines are noisy, the median is what we quote.</summary>
public static class Timing
{
    /// <summary>The median (the mean of the middle two for an even count).</summary>
    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) throw new ArgumentException("No values to take the median of.", nameof(values));
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    /// <summary>
    /// The median seconds of <paramref name="runs"/> runs of <paramref name="work"/>, after one untimed run and,
    /// if <paramref name="warmupSeconds"/> is set, after repeating it that long (tiered JIT compiles hot kernels meanwhile).
    /// </summary>
    public static double MedianSeconds(Action work, int runs = 5, double warmupSeconds = 0)
    {
        var warm = Stopwatch.StartNew();
        do work(); while (warm.Elapsed.TotalSeconds < warmupSeconds);
        return Median(Enumerable.Range(0, runs).Select(_ =>
        {
            var clock = Stopwatch.StartNew();
            work();
            return clock.Elapsed.TotalSeconds;
        }).ToArray());
    }
}
