using System.Security.Cryptography;
using Coldmind.Nn.Privacy;
using Coldmind.Tensors;

namespace Coldmind.Swarm.Privacy;

/// <summary>
/// Example-level DP on one device: its local steps run DP-SGD (<see cref="DpSgd"/>) and its own accountant composes
/// one sampled Gaussian step of q = batch/examples for each, so everything the device sends — a gossip model, a
/// FedAvg update — is (ε, δ)-DP with respect to each of its examples, whoever receives it (post-processing). Once
/// one more step would take ε past the target the device stops training and only passes on what it has. Batches
/// are drawn without replacement and accounted as Poisson sampling, as TF-Privacy's and Opacus's tutorials do.
/// </summary>
public sealed class DeviceDp(DpOptions options, int examples)
{
    public DpOptions Options { get; } = options;
    public RdpAccountant Accountant { get; } = new();
    public Rng Noise { get; } = new(BitConverter.ToUInt64(RandomNumberGenerator.GetBytes(8)));

    public double Epsilon => Accountant.Epsilon(Options.Delta);

    /// <summary>The sampling rate of a batch of <paramref name="batch"/> from the device's examples.</summary>
    public double Rate(int batch) => Math.Min(1.0, (double)batch / Math.Max(1, examples));

    /// <summary>Whether one more step of <paramref name="batch"/> examples stays within the target.</summary>
    public bool CanStep(int batch)
    {
        if (Options.TargetEpsilon is not { } target) return true;
        var next = new RdpAccountant();
        next.Step(Rate(batch), Options.NoiseMultiplier, Accountant.Steps + 1);
        return next.Epsilon(Options.Delta) <= target;
    }

    public void Stepped(int batch) => Accountant.Step(Rate(batch), Options.NoiseMultiplier);

    /// <summary>Composes the <paramref name="steps"/> of batches of <paramref name="batch"/> a checkpoint recorded;
    /// returns ε then (null for none).</summary>
    public double? Restore(long steps, int batch)
    {
        if (steps <= 0) return null;
        Accountant.Step(Rate(batch), Options.NoiseMultiplier, steps);
        return Epsilon;
    }
}
