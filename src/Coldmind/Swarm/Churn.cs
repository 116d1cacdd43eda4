using System.Globalization;
using Coldmind.Tensors;

namespace Coldmind.Swarm;

/// <summary>
/// When each node is online. Either from a distribution — alternating online and offline sessions, exponentially
/// distributed, with mean online length <see cref="SessionSeconds"/> and offline fraction <see cref="OfflineFraction"/>
/// in the long run — or from a trace file of online intervals (CSV lines <c>node,from_seconds,until_seconds</c>;
/// nodes absent from the trace are always online).
/// </summary>
public sealed class Churn
{
    private readonly Dictionary<int, List<(double From, double Until)>>? _trace;

    public double OfflineFraction { get; }
    public double SessionSeconds { get; }
    public string Description { get; }

    private Churn(double offline, double session, Dictionary<int, List<(double, double)>>? trace, string description)
    {
        OfflineFraction = offline;
        SessionSeconds = session;
        _trace = trace;
        Description = description;
    }

    public static Churn None { get; } = new(0, 1, null, "none");

    public static Churn Sessions(double offlineFraction, double sessionSeconds)
    {
        if (offlineFraction is < 0 or >= 1 || !double.IsFinite(offlineFraction)) throw new ColdmindException($"--churn is the fraction of time a node is offline, in [0, 1), got {offlineFraction}.");
        if (!(sessionSeconds > 0) || !double.IsFinite(sessionSeconds)) throw new ColdmindException($"--session must be positive seconds, got {sessionSeconds}.");
        return offlineFraction == 0 ? None : new(offlineFraction, sessionSeconds, null,
            string.Create(CultureInfo.InvariantCulture, $"{offlineFraction:P0} offline, sessions of {sessionSeconds:G3} s on average"));
    }

    public static Churn FromTrace(string path, int nodes)
    {
        if (!File.Exists(path)) throw new ColdmindException($"Churn trace '{path}' does not exist.");
        var trace = new Dictionary<int, List<(double, double)>>();
        int line = 0;
        foreach (string raw in File.ReadLines(path))
        {
            line++;
            string text = raw.Trim();
            if (text.Length == 0 || text.StartsWith('#') || (line == 1 && text.StartsWith("node", StringComparison.OrdinalIgnoreCase))) continue;
            var f = text.Split(',');
            if (f.Length != 3 || !int.TryParse(f[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out int node)
                || !double.TryParse(f[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double from)
                || !double.TryParse(f[2], NumberStyles.Float, CultureInfo.InvariantCulture, out double until))
                throw new ColdmindException($"{path}:{line}: expected node,from_seconds,until_seconds, got '{text}'.");
            if (node < 0 || node >= nodes) throw new ColdmindException($"{path}:{line}: node {node} outside 0..{nodes - 1}.");
            if (!(from >= 0) || !(until > from) || !double.IsFinite(until)) throw new ColdmindException($"{path}:{line}: an interval needs 0 ≤ from < until, got {from}..{until}.");
            (trace.TryGetValue(node, out var list) ? list : trace[node] = []).Add((from, until));
        }
        foreach (var list in trace.Values) list.Sort();
        return new(double.NaN, double.NaN, trace, $"trace {Path.GetFileName(path)} ({trace.Count} nodes listed)");
    }

    /// <summary>
    /// Whether <paramref name="node"/> is online at time 0, and the times at which it toggles, in order: a finite list
    /// for a trace, an endless lazy sequence for sessions (drawn from <paramref name="rng"/> as it is read).
    /// </summary>
    public (bool OnlineAtStart, IEnumerable<double> Toggles) Schedule(int node, Rng rng)
    {
        if (_trace != null)
        {
            if (!_trace.TryGetValue(node, out var intervals)) return (true, []);
            var merged = new List<(double From, double Until)>(); // sorted; overlapping or touching intervals join
            foreach (var (from, until) in intervals)
                if (merged.Count > 0 && from <= merged[^1].Until) merged[^1] = (merged[^1].From, Math.Max(merged[^1].Until, until));
                else merged.Add((from, until));
            var toggles = new List<double>();
            foreach (var (from, until) in merged)
            {
                if (from > 0) toggles.Add(from);
                toggles.Add(until);
            }
            return (merged[0].From == 0, toggles);
        }
        if (OfflineFraction == 0) return (true, []);
        bool on = rng.NextDouble() >= OfflineFraction;
        return (on, Sessions(on, rng));
    }

    private IEnumerable<double> Sessions(bool online, Rng rng)
    {
        double offlineMean = SessionSeconds * OfflineFraction / (1 - OfflineFraction);
        for (double t = 0; ; online = !online)
        {
            t += -Math.Log(1 - rng.NextDouble()) * (online ? SessionSeconds : offlineMean);
            yield return t;
        }
    }
}
