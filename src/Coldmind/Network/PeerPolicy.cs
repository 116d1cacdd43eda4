using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Coldmind.Network;

/// <summary>
/// Which peer addresses a node learns from messages, and how fast: only IP:PORT inside the allowed networks
/// (<c>--peers-from</c>, CIDRs; by default the networks of the node's seeds, a /24 or a /64 around each, all of
/// loopback for a loopback seed), and at most <see cref="NewPerPeriod"/> addresses it did not know a period, so
/// a message cannot point a node at hosts outside the swarm, nor flood its view with made-up peers.
/// </summary>
public sealed class PeerPolicy
{
    private readonly IPNetwork[] _allowed;
    private readonly Lock _gate = new();
    private readonly double _periodMs;
    private double _budget;
    private long _lastMs = Environment.TickCount64;

    public IReadOnlyList<IPNetwork> Allowed => _allowed;
    public int NewPerPeriod { get; }
    public long Refused { get; private set; }

    public PeerPolicy(IReadOnlyList<IPNetwork> allowed, int newPerPeriod, TimeSpan period)
    {
        if (allowed.Count == 0) throw new ColdmindException("--peers-from names no network.");
        if (newPerPeriod < 1) throw new ColdmindException($"A node must learn at least one new peer a period, got {newPerPeriod}.");
        (_allowed, NewPerPeriod, _periodMs, _budget) = (allowed.ToArray(), newPerPeriod, period.TotalMilliseconds,
            newPerPeriod);
    }

    /// <summary>CIDRs separated by commas (e.g. 10.0.0.0/8,fd00::/8).</summary>
    public static IReadOnlyList<IPNetwork> ParseNetworks(string spec)
    {
        var networks = new List<IPNetwork>();
        foreach (var part in spec.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!IPNetwork.TryParse(part, out var network))
                throw new ColdmindException($"--peers-from takes CIDRs such as 10.0.0.0/8 or fd00::/8, got '{part}'.");
            networks.Add(network);
        }
        return networks.Count > 0 ? networks : throw new ColdmindException("--peers-from names no network.");
    }

    /// <summary>The networks of the seeds: all of loopback for a loopback seed, else the /24 (IPv4) or /64 (IPv6)
    /// around it.</summary>
    public static IReadOnlyList<IPNetwork> SeedNetworks(IEnumerable<string> seeds) =>
        seeds.Select(s => Ip(s) ?? throw new ColdmindException($"The seed '{s}' is not IP:PORT; give --peers-from for a swarm found by name."))
            .Select(ip => IPAddress.IsLoopback(ip) ? (ip.AddressFamily == AddressFamily.InterNetwork ?
                IPNetwork.Parse("127.0.0.0/8") : IPNetwork.Parse("::1/128"))
                : new IPNetwork(Masked(ip, ip.AddressFamily == AddressFamily.InterNetwork ? 24 : 64),
                    ip.AddressFamily == AddressFamily.InterNetwork ? 24 : 64))
            .Distinct().ToArray();

    /// <summary>Whether <paramref name="address"/> (HOST:PORT) is an IP endpoint inside the allowed networks.</summary>
    public bool Allows(string address) => Ip(address) is { } ip && _allowed.Any(n => n.Contains(ip));

    /// <summary>
    /// What of <paramref name="learned"/> a node may take into its view: allowed addresses it knows already, and
    /// new ones while this period's budget lasts (it refills at <see cref="NewPerPeriod"/> a period).
    /// </summary>
    public List<T> Filter<T>(IEnumerable<T> learned, Func<T, string> address, Func<string, bool> known)
    {
        var kept = new List<T>();
        lock (_gate)
        {
            long now = Environment.TickCount64;
            _budget = Math.Min(NewPerPeriod, _budget + (now - _lastMs) / _periodMs * NewPerPeriod);
            _lastMs = now;
            foreach (var p in learned)
            {
                string a = address(p);
                if (!Allows(a)) { Refused++; continue; }
                if (!known(a))
                {
                    if (_budget < 1) { Refused++; continue; }
                    _budget--;
                }
                kept.Add(p);
            }
        }
        return kept;
    }

    /// <summary>The IP of HOST:PORT ([v6]:PORT; localhost is loopback), or null for a name or no port.</summary>
    private static IPAddress? Ip(string endpoint)
    {
        int colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !ushort.TryParse(endpoint.AsSpan(colon + 1), NumberStyles.None,
            CultureInfo.InvariantCulture, out _)) return null;
        string host = endpoint[..colon];
        if (host == "localhost") return IPAddress.Loopback;
        if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
        return IPAddress.TryParse(host, out var ip) ? ip : null;
    }

    private static IPAddress Masked(IPAddress ip, int bits)
    {
        var bytes = ip.GetAddressBytes();
        for (int i = 0; i < bytes.Length; i++)
        {
            int keep = Math.Clamp(bits - 8 * i, 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - keep));
        }
        return new IPAddress(bytes);
    }
}
