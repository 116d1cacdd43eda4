using System.Globalization;

namespace Coldmind.Cost;

/// <summary>
/// Limits on what a model may cost on a device: bytes of weights, joules and seconds per inference. Shared by the
/// per-layer precision search and the merge evolution, which both rank candidates within budget above those outside.
/// </summary>
public sealed record Budget(long? MaxBytes = null, double? MaxJoules = null, double? MaxSeconds = null)
{
    public bool IsEmpty => MaxBytes == null && MaxJoules == null && MaxSeconds == null;

    public void Validate()
    {
        if (MaxBytes is <= 0 || MaxJoules is <= 0 || MaxSeconds is <= 0) throw new ColdmindException("Budgets (--max-bytes, --max-joules, --max-latency) must be positive.");
    }

    /// <summary>How far a cost is over budget, as a sum of relative excesses (0: within).</summary>
    public double Violation(long bytes, double joules, double seconds) =>
        (MaxBytes is { } b && bytes > b ? (double)(bytes - b) / b : 0) + (MaxJoules is { } j && joules > j ? (joules - j) / j : 0)
        + (MaxSeconds is { } t && seconds > t ? (seconds - t) / t : 0);

    public string Describe() =>
        string.Join(", ", new[]
        {
            MaxBytes is { } x ? $"≤ {x.ToString("N0", CultureInfo.InvariantCulture)} bytes" : null,
            MaxJoules is { } j ? $"≤ {(j * 1e6).ToString("F3", CultureInfo.InvariantCulture)} µJ" : null,
            MaxSeconds is { } t ? $"≤ {(t * 1e6).ToString("F1", CultureInfo.InvariantCulture)} µs" : null,
        }.Where(t => t != null)) is { Length: > 0 } d ? d : "none";
}
