using System.CommandLine;
using Coldmind.Nn.Privacy;
using Coldmind.Swarm;

namespace Coldmind.Cli.Commands;

/// <summary>The options that keep one device from steering the others, robust by default, shared by swarm, node and
/// coordinator.</summary>
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

    /// <summary>--dp, --noise-multiplier, --dp-clip, --target-epsilon, --delta: add them to a command, read them with
    /// <see cref="Dp.Read"/>.</summary>
    public sealed class Dp
    {
        public Option<bool> On { get; } = new("--dp") { Description = "differential privacy: clip each contribution, add Gaussian noise, account (ε, δ) with an RDP accountant" };
        public Option<double> Noise { get; } = new("--noise-multiplier") { Description = "DP: the noise's standard deviation over the clip norm (σ)", DefaultValueFactory = _ => 1.0 };
        public Option<double> Clip { get; } = new("--dp-clip") { Description = "DP: the norm each contribution is clipped to (C)", DefaultValueFactory = _ => 1.0 };
        public Option<double?> Target { get; } = new("--target-epsilon") { Description = "DP: stop before ε would pass this" };
        public Option<double> Delta { get; } = new("--delta") { Description = "DP: δ of the (ε, δ) guarantee",
            DefaultValueFactory = _ => DpOptions.DefaultDelta };

        public IEnumerable<Option> All => [On, Noise, Clip, Target, Delta];

        /// <summary>The DP options when --dp is given, else null (the other options then must not be given).</summary>
        public DpOptions? Read(ParseResult r)
        {
            if (!r.GetValue(On))
            {
                if (r.GetResult(Noise) is { Implicit: false } || r.GetResult(Clip) is { Implicit: false } ||
                    r.GetValue(Target) != null || r.GetResult(Delta) is { Implicit: false })
                    throw new ColdmindException("--noise-multiplier, --dp-clip, --target-epsilon and --delta take effect with --dp; give --dp.");
                return null;
            }
            var o = new DpOptions(r.GetValue(Noise), r.GetValue(Clip), r.GetValue(Delta), r.GetValue(Target));
            o.Validate();
            return o;
        }
    }
}
