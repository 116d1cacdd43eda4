using System.Globalization;

namespace Coldmind.Nn.Privacy;

/// <summary>
/// Differential privacy as a user states it (`--dp --noise-multiplier σ --dp-clip C --target-epsilon ε --delta δ`):
/// each contribution (an example's gradient in DP-SGD, a client's update in DP-FedAvg) is clipped to norm C and the
/// sum gets Gaussian noise of standard deviation σ·C; the <see cref="RdpAccountant"/> reports (ε, δ) as it goes and
/// the run stops before ε would pass the target.
/// </summary>
public sealed record DpOptions(double NoiseMultiplier, double Clip, double Delta = DpOptions.DefaultDelta,
    double? TargetEpsilon = null)
{
    public const double DefaultDelta = 1e-5;

    public void Validate()
    {
        if (!(NoiseMultiplier > 0 &&
            double.IsFinite(NoiseMultiplier))) throw new ColdmindException($"--noise-multiplier must be positive, got {Str(NoiseMultiplier)}.");
        if (!(Clip > 0 && double.IsFinite(Clip))) throw new ColdmindException($"--dp-clip must be a positive norm, got {Str(Clip)}.");
        if (!(Delta is > 0 and < 1)) throw new ColdmindException($"--delta must be in (0, 1), got {Str(Delta)}.");
        if (TargetEpsilon is { } e && !(e > 0 &&
            double.IsFinite(e))) throw new ColdmindException($"--target-epsilon must be positive, got {Str(e)}.");
    }

    private static string Str(double v) => v.ToString("G4", CultureInfo.InvariantCulture);
}
