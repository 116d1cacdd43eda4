using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Coldmind.Serving;

/// <summary>
/// The counters of a language model in service, published on the <c>Coldmind.Serving</c> meter
/// (<c>dotnet-counters monitor -n coldmind --counters Coldmind.Serving</c>) and as Prometheus text
/// (<see cref="ToPrometheus"/>, the server's <c>/metrics</c>). One set of fields backs both.
/// </summary>
public sealed class ServingMetrics : IDisposable
{
    public const string MeterName = "Coldmind.Serving";

    private readonly Meter _meter = new(MeterName);
    private readonly Func<(int Queued, int Busy, int Slots)> _slots;
    private long _requests, _rejected, _cancelled, _promptTokens, _completionTokens, _firstTokens;
    private double _firstTokenSeconds, _generationSeconds;
    private readonly Lock _sums = new();

    public long Requests => Interlocked.Read(ref _requests);
    public long Rejected => Interlocked.Read(ref _rejected);
    public long Cancelled => Interlocked.Read(ref _cancelled);
    public long PromptTokens => Interlocked.Read(ref _promptTokens);
    public long CompletionTokens => Interlocked.Read(ref _completionTokens);

    /// <summary>The estimated joules of one token on the client's device (0: no device, no estimate).</summary>
    public double JoulesPerToken { get; }

    /// <summary>Estimated joules of every token evaluated so far (see <see cref="ChatClientSettings.Device"/>).</summary>
    public double Joules => JoulesPerToken * (PromptTokens + CompletionTokens);

    internal ServingMetrics(Func<(int Queued, int Busy, int Slots)> slots, double joulesPerToken)
    {
        _slots = slots;
        JoulesPerToken = joulesPerToken;
        const string Unit = "{request}";
        _meter.CreateObservableCounter("coldmind.serving.requests", () => Requests, Unit, "generations finished");
        _meter.CreateObservableCounter("coldmind.serving.rejected", () => Rejected, Unit, "bad input or a full queue");
        _meter.CreateObservableCounter("coldmind.serving.cancelled", () => Cancelled, Unit, "stopped by their client");
        _meter.CreateObservableCounter("coldmind.serving.prompt_tokens", () => PromptTokens, "{token}");
        _meter.CreateObservableCounter("coldmind.serving.completion_tokens", () => CompletionTokens, "{token}");
        _meter.CreateObservableGauge("coldmind.serving.queue_length", () => _slots().Queued, Unit, "waiting");
        _meter.CreateObservableGauge("coldmind.serving.busy_slots", () => _slots().Busy, "{slot}");
        _meter.CreateObservableGauge("coldmind.serving.tokens_per_second", () => TokensPerSecond, "{token}/s",
            "completion tokens over the seconds spent generating them, since start");
        _firstToken = _meter.CreateHistogram<double>("coldmind.serving.time_to_first_token", "s");
        if (joulesPerToken > 0)
            _meter.CreateObservableCounter("coldmind.serving.joules", () => Joules, "J", "estimated energy of the tokens");
    }

    private readonly Histogram<double> _firstToken;

    /// <summary>Generation speed since start: completion tokens over the seconds of single-token steps.</summary>
    public double TokensPerSecond
    {
        get { lock (_sums) return _generationSeconds > 0 ? CompletionTokens / _generationSeconds : 0; }
    }

    internal void Rejection() => Interlocked.Increment(ref _rejected);
    internal void Cancellation() => Interlocked.Increment(ref _cancelled);

    internal void Finished(int promptTokens, int completionTokens, double firstTokenSeconds, double generationSeconds)
    {
        Interlocked.Increment(ref _requests);
        Interlocked.Add(ref _promptTokens, promptTokens);
        Interlocked.Add(ref _completionTokens, completionTokens);
        if (firstTokenSeconds >= 0)
        {
            Interlocked.Increment(ref _firstTokens);
            _firstToken.Record(firstTokenSeconds);
        }
        lock (_sums)
        {
            if (firstTokenSeconds >= 0) _firstTokenSeconds += firstTokenSeconds;
            _generationSeconds += generationSeconds;
        }
    }

    /// <summary>The counters in Prometheus' text exposition format (version 0.0.4).</summary>
    public string ToPrometheus()
    {
        var (queued, busy, slots) = _slots();
        var text = new StringBuilder();
        void Metric(string name, string type, string help, double value)
        {
            text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
            text.Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n');
            text.Append(name).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
        }
        double firstSum, generationSum;
        lock (_sums) (firstSum, generationSum) = (_firstTokenSeconds, _generationSeconds);
        Metric("coldmind_requests_total", "counter", "Generations finished.", Requests);
        Metric("coldmind_rejected_total", "counter", "Requests refused: bad input or a full queue.", Rejected);
        Metric("coldmind_cancelled_total", "counter", "Generations stopped by their client.", Cancelled);
        Metric("coldmind_prompt_tokens_total", "counter", "Prompt tokens evaluated.", PromptTokens);
        Metric("coldmind_completion_tokens_total", "counter", "Tokens generated.", CompletionTokens);
        Metric("coldmind_generation_seconds_total", "counter", "Seconds spent in single-token steps.", generationSum);
        Metric("coldmind_time_to_first_token_seconds_sum", "counter", "Seconds from request to first token, summed.",
            firstSum);
        Metric("coldmind_time_to_first_token_seconds_count", "counter", "Requests that produced a first token.",
            Interlocked.Read(ref _firstTokens));
        Metric("coldmind_queue_length", "gauge", "Requests waiting for a slot.", queued);
        Metric("coldmind_busy_slots", "gauge", "Slots generating now.", busy);
        Metric("coldmind_slots", "gauge", "Slots (--parallel).", slots);
        if (JoulesPerToken > 0)
            Metric("coldmind_joules_estimate_total", "counter", "Estimated joules of the tokens on the device.", Joules);
        return text.ToString();
    }

    public void Dispose() => _meter.Dispose();
}
