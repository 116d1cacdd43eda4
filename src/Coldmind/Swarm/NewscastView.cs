using Coldmind.Tensors;

namespace Coldmind.Swarm;

/// <summary>
/// Peer sampling with a partial view, after Newscast (Jelasity et al.): a node knows at most <see cref="Capacity"/>
/// peers with the time each was last heard of. Every message carries the sender's view plus the sender itself,
/// timestamped now; the receiver keeps the freshest entries of both. Dead peers stop refreshing their entries and
/// age out; no node needs the full membership.
/// </summary>
public sealed class NewscastView(string self, int capacity)
{
    private readonly List<PeerDescriptor> _peers = [];

    public string Self { get; } = self;
    public int Capacity { get; } = capacity is >= 1 and < SwarmMessage.MaxView ? capacity
        : throw new ColdmindException($"--view must be in 1..{SwarmMessage.MaxView - 1}, got {capacity}.");

    public IReadOnlyList<PeerDescriptor> Peers => _peers;

    /// <summary>What goes into an outgoing message: the view and this node, fresh.</summary>
    public PeerDescriptor[] Outgoing(long now) => [.. _peers, new PeerDescriptor(Self, now)];

    public void Merge(IEnumerable<PeerDescriptor> received)
    {
        var freshest = new Dictionary<string, long>();
        foreach (var p in _peers.Concat(received))
            if (p.Address != Self && (!freshest.TryGetValue(p.Address, out long t) || p.Timestamp > t)) freshest[p.Address] = p.Timestamp;
        _peers.Clear();
        _peers.AddRange(freshest.Select(kv => new PeerDescriptor(kv.Key, kv.Value))
            .OrderByDescending(p => p.Timestamp).ThenBy(p => p.Address, StringComparer.Ordinal).Take(Capacity));
    }

    /// <summary>A peer drawn uniformly from the view, or null when the view is empty.</summary>
    public string? Pick(Rng rng) => _peers.Count == 0 ? null : _peers[rng.NextInt(_peers.Count)].Address;

    /// <summary>Forgets a peer that could not be reached.</summary>
    public void Remove(string address) => _peers.RemoveAll(p => p.Address == address);
}
