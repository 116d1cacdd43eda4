using System.CommandLine;
using Coldmind.Swarm;

namespace Coldmind.Cli.Commands;

/// <summary>The options that keep one device from steering the others, robust by default, shared by swarm, node and coordinator.</summary>
internal static class TrustOptions
{
    public static Option<string> Clip(string what) => new("--clip")
    {
        Description = $"{what}: auto (the median of the recent steps for gossip, twice the round's median update norm for FedAvg), 0 (none) or a norm",
        DefaultValueFactory = _ => "auto",
    };

    public static Option<float> AgeLead() => new("--age-lead")
    {
        Description = "gossip: a merge counts a received age up to this many times the receiver's own (0: any age)",
        DefaultValueFactory = _ => GossipOptions.DefaultAgeLead,
    };

    public static Option<float> WeightCap() => new("--weight-cap")
    {
        Description = "FedAvg mean: a client weighs at most this many times the round's median example count (0: what it claims)",
        DefaultValueFactory = _ => Aggregation.DefaultWeightCap,
    };

    public static Option<string?> PeersFrom() => new("--peers-from")
    {
        Description = "gossip: CIDRs the node learns peers from (e.g. 10.0.0.0/8); others in messages are ignored (default: the seeds' networks)",
    };

    public static Option<int> NewPeers() => new("--new-peers")
    {
        Description = "gossip: the most peers a node learns from messages a period",
        DefaultValueFactory = _ => 8,
    };
}
