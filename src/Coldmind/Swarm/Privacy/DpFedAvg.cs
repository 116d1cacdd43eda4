using System.Security.Cryptography;
using Coldmind.Nn.Privacy;
using Coldmind.Tensors;

namespace Coldmind.Swarm.Privacy;

/// <summary>
/// Client-level differential privacy for FedAvg (McMahan et al. 2018, "DP-FedAvg"; Flower's server-side fixed
/// clipping): each client's update is clipped to norm C, the clipped updates are summed, Gaussian noise of standard
/// deviation σ·C is added to every coordinate of the sum, and the sum is divided by the expected number of clients
/// in a round m (a fixed denominator, so one client's presence changes the result by at most C/m). A round samples
/// each of the N clients with probability q = m/N; the <see cref="RdpAccountant"/> composes one sampled Gaussian
/// step a round, which bounds what the final model reveals about any one client's whole data. The coordinator
/// sees the clipped updates themselves (use secure aggregation to hide them; not built yet). The sampling is a fixed
/// number m of the clients that check in, as in Flower and TFF, accounted for as Poisson sampling at rate m/N.
/// Noise comes from a generator seeded by the OS's, so no seed lets anyone subtract it.
/// </summary>
public sealed class DpFedAvg
{
    private readonly Rng _noise = new(BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)));

    public DpOptions Options { get; }
    public int ClientsPerRound { get; }
    public int Population { get; }
    public double SamplingRate => (double)ClientsPerRound / Population;
    public RdpAccountant Accountant { get; } = new();

    public DpFedAvg(DpOptions options, int clientsPerRound, int population)
    {
        options.Validate();
        if (clientsPerRound < 1 || population < clientsPerRound)
            throw new ColdmindException($"DP-FedAvg samples {clientsPerRound} of {population} clients a round; the population (--population) must hold them.");
        (Options, ClientsPerRound, Population) = (options, clientsPerRound, population);
    }

    /// <summary>ε spent so far at the options' δ.</summary>
    public double Epsilon => Accountant.Epsilon(Options.Delta);

    /// <summary>Whether one more round would take ε past the target (never without one).</summary>
    public bool Exhausted
    {
        get
        {
            if (Options.TargetEpsilon is not { } target) return false;
            var next = new RdpAccountant();
            next.Step(SamplingRate, Options.NoiseMultiplier, Accountant.Steps + 1);
            return next.Epsilon(Options.Delta) > target;
        }
    }

    /// <summary>The noised mean of a round's updates (each of the same length), and one step on the
    /// accountant.</summary>
    public float[] Aggregate(IReadOnlyList<float[]> updates, int length)
    {
        var sum = new float[length];
        foreach (var u in updates) TensorPrimitives.MultiplyAdd(u, ClipFactor(u), sum, sum);
        return Noised(sum);
    }

    /// <summary>The factor each client scales its update by before it is summed (under secure aggregation, on the
    /// client).</summary>
    public float ClipFactor(ReadOnlySpan<float> update) => GossipNode.ClipFactor(update, (float)Options.Clip);

    /// <summary>The noised mean from the sum of the clipped updates (in place), and one step on the
    /// accountant.</summary>
    public float[] Noised(float[] sum)
    {
        float sd = (float)(Options.NoiseMultiplier * Options.Clip);
        for (int i = 0; i < sum.Length; i++) sum[i] += sd * _noise.NextNormal();
        TensorPrimitives.Multiply(sum, 1f / ClientsPerRound, sum);
        Accountant.Step(SamplingRate, Options.NoiseMultiplier);
        return sum;
    }
}
