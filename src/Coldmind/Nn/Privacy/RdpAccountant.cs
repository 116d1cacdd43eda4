using System.Globalization;

namespace Coldmind.Nn.Privacy;

/// <summary>
/// The Rényi-DP accountant of the sampled Gaussian mechanism (Mironov, Talwar and Zhang 2019), as TF-Privacy's
/// <c>compute_rdp</c> and Opacus's <c>RDPAccountant</c> compute it: each step samples every record with probability
/// q and adds Gaussian noise of σ times the sensitivity; RDP at order α composes by addition over steps, and the
/// smallest (ε, δ) over <see cref="Orders"/> is reported. It lives in Nn because both DP-SGD on a device (`train`)
/// and client-level DP-FedAvg (Swarm) account with it, and Swarm may use Nn but not the other way round.
/// </summary>
public sealed class RdpAccountant
{
    /// <summary>Opacus's and TF-Privacy's default orders: 1.1 to 10.9 by 0.1, then 12 to 63.</summary>
    public static readonly double[] Orders = [.. Enumerable.Range(1, 99).Select(x => 1 + x / 10.0),
        .. Enumerable.Range(12, 52).Select(x => (double)x)];

    private readonly double[] _rdp = new double[Orders.Length];

    public long Steps { get; private set; }

    /// <summary>Composes <paramref name="steps"/> steps of sampling rate <paramref name="q"/> and noise multiplier
    /// <paramref name="sigma"/>.</summary>
    public void Step(double q, double sigma, long steps = 1)
    {
        if (!(q is > 0 and <= 1) || !(sigma > 0) || steps < 0)
            throw new ColdmindException($"A DP step needs a sampling rate in (0, 1] and a positive noise multiplier, got q = {q}, σ = {sigma}.");
        for (int k = 0; k < Orders.Length; k++) _rdp[k] += steps * Rdp(q, sigma, Orders[k]);
        Steps += steps;
    }

    /// <summary>ε at <paramref name="delta"/> by Opacus's conversion (Balle et al. 2020): RDP − (log δ + log α)/(α − 1)
    /// + log((α − 1)/α).</summary>
    public double Epsilon(double delta) => Minimum(delta, (r, a) =>
        r - (Math.Log(delta) + Math.Log(a)) / (a - 1) + Math.Log((a - 1) / a));

    /// <summary>ε at <paramref name="delta"/> by the classic conversion of TF-Privacy's 2019 tutorials: RDP +
    /// log(1/δ)/(α − 1).</summary>
    public double EpsilonClassic(double delta) => Minimum(delta, (r, a) => r - Math.Log(delta) / (a - 1));

    private double Minimum(double delta, Func<double, double, double> convert)
    {
        if (!(delta is > 0 and < 1)) throw new ColdmindException($"δ must be in (0, 1), got {delta.ToString(CultureInfo.InvariantCulture)}.");
        if (Steps == 0) return 0;
        double best = double.PositiveInfinity;
        for (int k = 0; k < Orders.Length; k++) best = Math.Min(best, Math.Max(0, convert(_rdp[k], Orders[k])));
        return best;
    }

    /// <summary>RDP of one step at order <paramref name="alpha"/> &gt; 1: log A_α / (α − 1).</summary>
    public static double Rdp(double q, double sigma, double alpha)
    {
        if (q == 1) return alpha / (2 * sigma * sigma);
        double logA = alpha == Math.Floor(alpha) ? LogAInteger(q, sigma, (int)alpha) : LogAFractional(q, sigma, alpha);
        return logA / (alpha - 1);
    }

    /// <summary>log A_α for integer α: log Σᵢ C(α, i) qⁱ (1 − q)^(α−i) exp((i² − i)/(2σ²)).</summary>
    private static double LogAInteger(double q, double sigma, int alpha)
    {
        double logA = double.NegativeInfinity, logBinomial = 0;
        for (int i = 0; i <= alpha; i++)
        {
            double term = logBinomial + i * Math.Log(q) + (alpha - i) * Math.Log(1 - q) + (i * (double)i - i) / (2 * sigma * sigma);
            logA = LogAdd(logA, term);
            logBinomial += Math.Log(alpha - i) - Math.Log(i + 1);
        }
        return logA;
    }

    /// <summary>log A_α for fractional α: the two-sided series of Mironov et al. (2019, §3.3), summed until its terms
    /// fall below e⁻³⁰.</summary>
    private static double LogAFractional(double q, double sigma, double alpha)
    {
        double logA0 = double.NegativeInfinity, logA1 = double.NegativeInfinity;
        double z0 = sigma * sigma * Math.Log(1 / q - 1) + 0.5;
        double logCoefficient = 0; // log |C(α, i)|, the generalized binomial
        bool positive = true;
        for (int i = 0; i < 100_000; i++)
        {
            double j = alpha - i;
            double logT0 = logCoefficient + i * Math.Log(q) + j * Math.Log(1 - q);
            double logT1 = logCoefficient + j * Math.Log(q) + i * Math.Log(1 - q);
            double logE0 = Math.Log(0.5) + LogErfc((i - z0) / (Math.Sqrt(2) * sigma));
            double logE1 = Math.Log(0.5) + LogErfc((z0 - j) / (Math.Sqrt(2) * sigma));
            double logS0 = logT0 + (i * (double)i - i) / (2 * sigma * sigma) + logE0;
            double logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
            if (positive) { logA0 = LogAdd(logA0, logS0); logA1 = LogAdd(logA1, logS1); }
            else { logA0 = LogSub(logA0, logS0); logA1 = LogSub(logA1, logS1); }
            if (Math.Max(logS0, logS1) < -30) break;
            // C(α, i + 1) = C(α, i) (α − i)/(i + 1): its sign flips each time α − i is negative
            logCoefficient += Math.Log(Math.Abs(alpha - i)) - Math.Log(i + 1);
            if (alpha - i < 0) positive = !positive;
        }
        return LogAdd(logA0, logA1);
    }

    private static double LogAdd(double a, double b)
    {
        if (double.IsNegativeInfinity(a)) return b;
        if (double.IsNegativeInfinity(b)) return a;
        return Math.Max(a, b) + double.LogP1(Math.Exp(-Math.Abs(a - b)));
    }

    private static double LogSub(double a, double b)
    {
        if (double.IsNegativeInfinity(b)) return a;
        if (b >= a) return double.NegativeInfinity; // the series' partial sums stay positive; equal terms cancel
        return a + Math.Log(-double.ExpM1(b - a));
    }

    /// <summary>
    /// log erfc(x) without underflow: for x ≥ 0 Numerical Recipes' Chebyshev fit, erfc(x) = t·exp(−x² + P(t)) with
    /// t = 1/(1 + x/2) and relative error below 1.2e-7 everywhere, taken in log form; for x &lt; 0, log(2 − erfc(−x)).
    /// </summary>
    public static double LogErfc(double x)
    {
        double z = Math.Abs(x), t = 1 / (1 + 0.5 * z);
        double p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807
            + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
        double logErfcZ = Math.Log(t) - z * z + p;
        return x >= 0 ? logErfcZ : Math.Log(2 - Math.Exp(logErfcZ));
    }
}
