using Coldmind.Tensors;

namespace Coldmind.Nn;

/// <summary>
/// Which weights of a model's matrices are kept. The prunable tensors are the weight matrices (rank ≥ 2:
/// linear and convolution weights); biases and norm gains are never pruned. <see cref="Apply"/> zeroes the
/// pruned weights; the trainer calls it after every step, so they stay zero while the rest learn.
/// </summary>
public sealed class PruningMask
{
    private readonly List<(string Name, Tensor Weight, bool[] Keep)> _entries;

    private PruningMask(List<(string, Tensor, bool[])> entries) => _entries = entries;

    /// <summary>Every weight of <paramref name="model"/>'s matrices kept.</summary>
    public static PruningMask Dense(Module model) => new(model.NamedParameters().Where(p => p.Tensor.Rank >= 2)
        .Select(p => (p.Name, p.Tensor, Enumerable.Repeat(true, p.Tensor.Numel).ToArray())).ToList());

    /// <summary>The weights of <paramref name="model"/>'s matrices that are not zero kept: a model pruned elsewhere, to train on with its zeros held.</summary>
    public static PruningMask OfZeros(Module model) => new(model.NamedParameters().Where(p => p.Tensor.Rank >= 2)
        .Select(p => (p.Name, p.Tensor, p.Tensor.ToArray().Select(v => v != 0).ToArray())).ToList());

    public long Total => _entries.Sum(e => (long)e.Keep.Length);
    public long Remaining => _entries.Sum(e => (long)e.Keep.Count(k => k));
    public double Density => (double)Remaining / Math.Max(1, Total);

    /// <summary>Kept flags by parameter name (row-major, as the tensor).</summary>
    public IReadOnlyDictionary<string, bool[]> ByName => _entries.ToDictionary(e => e.Name, e => e.Keep);

    public void Apply()
    {
        foreach (var (_, w, keep) in _entries)
        {
            var span = w.Span;
            for (int i = 0; i < keep.Length; i++) if (!keep[i]) span[i] = 0;
        }
    }

    /// <summary>
    /// A new mask that also removes the <paramref name="fraction"/> of the remaining weights with the smallest
    /// magnitudes: over all matrices at once (<paramref name="global"/>), or in each matrix separately with the
    /// output layer (the last matrix) pruned at half the rate, as Frankle and Carbin prune LeNet.
    /// </summary>
    public PruningMask Prune(double fraction, bool global)
    {
        if (fraction is <= 0 or >= 1) throw new ColdmindException($"The pruning rate must be between 0 and 1 (exclusive), got {fraction}.");
        var next = _entries.Select(e => (e.Name, e.Weight, (bool[])e.Keep.Clone())).ToList();
        if (global)
            PruneSmallest(next.Select(e => (e.Weight, e.Item3)).ToList(), fraction);
        else
            for (int i = 0; i < next.Count; i++)
                PruneSmallest([(next[i].Weight, next[i].Item3)], i == next.Count - 1 ? fraction / 2 : fraction);
        return new PruningMask(next);
    }

    private static void PruneSmallest(List<(Tensor Weight, bool[] Keep)> group, double fraction)
    {
        var kept = new List<(float Magnitude, int Entry, int Index)>();
        for (int e = 0; e < group.Count; e++)
        {
            var span = group[e].Weight.Span;
            for (int i = 0; i < group[e].Keep.Length; i++)
                if (group[e].Keep[i]) kept.Add((MathF.Abs(span[i]), e, i));
        }
        int remove = (int)Math.Round(kept.Count * fraction);
        kept.Sort((a, b) => a.Magnitude != b.Magnitude ? a.Magnitude.CompareTo(b.Magnitude) : (a.Entry, a.Index).CompareTo((b.Entry, b.Index)));
        for (int k = 0; k < remove; k++) group[kept[k].Entry].Keep[kept[k].Index] = false;
    }

    /// <summary>The same kept pattern on another model of the same shape (its parameters found by name).</summary>
    public PruningMask For(Module model)
    {
        var parameters = model.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor);
        return new PruningMask(_entries.Select(e => parameters.TryGetValue(e.Name, out var w) && w.Numel == e.Keep.Length
            ? (e.Name, w, (bool[])e.Keep.Clone())
            : throw new ColdmindException($"The mask's tensor '{e.Name}' has no match of {e.Keep.Length} values in the model.")).ToList());
    }
}
