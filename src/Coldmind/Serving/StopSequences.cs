namespace Coldmind.Serving;

/// <summary>
/// Cuts streamed text at the first of a set of stop sequences, as OpenAI's `stop` does (the sequence itself is not
/// returned). Text that could still be the start of a stop sequence is held back until the next piece decides it.
/// </summary>
public sealed class StopSequences(IReadOnlyList<string> stops)
{
    private string _pending = "";

    /// <summary>True once a stop sequence has been seen; later pieces are dropped.</summary>
    public bool Stopped { get; private set; }

    /// <summary>The text that can be emitted after <paramref name="piece"/>.</summary>
    public string Push(string piece)
    {
        if (Stopped) return "";
        _pending += piece;
        int cut = -1;
        foreach (var stop in stops)
        {
            int at = _pending.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        if (cut >= 0)
        {
            Stopped = true;
            var before = _pending[..cut];
            _pending = "";
            return before;
        }
        int hold = 0; // the longest suffix of the pending text that begins some stop sequence
        foreach (var stop in stops)
            for (int k = Math.Min(stop.Length - 1, _pending.Length); k > hold; k--)
                if (_pending.AsSpan(_pending.Length - k).SequenceEqual(stop.AsSpan(0, k))) { hold = k; break; }
        var ready = _pending[..^hold];
        _pending = _pending[^hold..];
        return ready;
    }

    /// <summary>What was held back, at the end of a generation that met no stop sequence.</summary>
    public string Flush()
    {
        var rest = Stopped ? "" : _pending;
        _pending = "";
        return rest;
    }
}
