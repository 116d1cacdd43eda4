using Coldmind.Swarm.SecureAggregation;
using Coldmind.Tensors;
using Xunit;

namespace Coldmind.Tests;

/// <summary>Secure aggregation's clients and server in one process (real ECDH, AES-GCM and AES-CTR; no network
/// yet).</summary>
public class SecureAggregationTests
{
    private const int Length = 5000;

    /// <summary>A round of <paramref name="n"/> clients, of whom <paramref name="dropped"/> vanish after sharing their
    /// keys.</summary>
    private static (float[] Sum, float[] Plain, Dictionary<int, uint[]> Masked, float[][] Updates) Round(int n,
        int threshold, int[] dropped)
    {
        var rng = new Rng(42);
        var clients = Enumerable.Range(0, n).Select(i => new SecAggClient(100 + i)).ToArray();
        var updates = clients.Select(_ => Enumerable.Range(0, Length).Select(_ =>
            rng.NextNormal() * 0.05f).ToArray()).ToArray();
        var keys = clients.Select(c => c.Keys()).ToList();
        var shares = clients.Select(c => (c.Id, Out: c.ShareKeys(keys, threshold))).ToList();
        foreach (var (from, outgoing) in shares)
            foreach (var c in clients) c.Receive(from, outgoing[c.Id]); // relayed: the coordinator cannot read them
        var encoding = new FixedPoint(n);
        var survivors = Enumerable.Range(0, n).Where(i => !dropped.Contains(i)).ToArray();
        var masked = survivors.ToDictionary(i => clients[i].Id, i => clients[i].Masked(updates[i], encoding));
        var lost = dropped.Select(i => clients[i].Id).ToArray();
        var unmasking = survivors.Select(i => clients[i].Unmask(masked.Keys.ToArray(), lost)).ToList();
        var sum = SecAggServer.Sum(keys, masked, unmasking, threshold, encoding, Length);
        var plain = new float[Length];
        foreach (int i in survivors)
            for (int k = 0; k < Length; k++) plain[k] += updates[i][k];
        foreach (var c in clients) c.Dispose();
        return (sum, plain, masked, updates);
    }

    [Fact]
    public void The_sum_of_masked_updates_is_the_plain_sum_and_one_masked_update_is_noise()
    {
        var (sum, plain, masked, updates) = Round(10, 6, []);
        AssertWithinRounding(plain, sum, 10);
        // what the coordinator holds of client 0: its masked words, as signed integers, against its true update
        var y = masked[100].Select(v => (double)(int)v).ToArray();
        double correlation = Correlation(y, updates[0].Select(v => (double)v).ToArray());
        Assert.InRange(correlation, -0.05, 0.05); // 5000 values: ±0.014 is one standard deviation of noise
    }

    [Fact]
    public void With_a_third_of_the_clients_dropped_after_masking_began_the_survivors_sum_is_still_exact()
    {
        var (sum, plain, masked, _) = Round(9, 5, [1, 4, 7]);
        Assert.Equal(6, masked.Count);
        AssertWithinRounding(plain, sum, 6);
        Assert.Throws<ColdmindException>(() => Round(9, 7, [1, 4, 7])); // fewer survivors than the threshold: no sum
    }

    [Fact]
    public void Shamir_shares_recover_the_secret_from_any_threshold_and_fixed_point_bounds_the_sum()
    {
        var secret = System.Security.Cryptography.RandomNumberGenerator.GetBytes(121);
        var shares = Shamir.Split(secret, 7, 4);
        Assert.Equal(secret, Shamir.Combine([2, 5, 6, 7], [shares[1], shares[4], shares[5], shares[6]]));
        Assert.NotEqual(secret, Shamir.Combine([2, 5, 6], [shares[1], shares[4], shares[5]]));
        var encoding = new FixedPoint(10);
        Assert.Equal(encoding.Range, encoding.Decode(encoding.Encode([1e9f]))[0], 3); // clamped, not wrapped
    }

    [Fact]
    public void FedAvg_in_the_simulator_learns_as_well_under_secure_aggregation_and_counts_its_bytes()
    {
        var digits = Coldmind.Data.BuiltinData.Load("digits");
        var o = new Coldmind.Swarm.SwarmOptions { Nodes = 20, Protocol = "fedavg", Rounds = 30,
            ClientFraction = 0.25, Hidden = [16], EvalNodes = 5, EvalExamples = 200 };
        var plain = new Coldmind.Swarm.SwarmSimulator(o, digits.Train, digits.Test).Run("digits");
        var secure = new Coldmind.Swarm.SwarmSimulator(o with { SecureAggregation = true }, digits.Train,
            digits.Test).Run("digits");
        Assert.Equal(0, plain.SecAggBytes);
        Assert.True(secure.SecAggBytes > 0 && secure.BytesSent == plain.BytesSent + secure.SecAggBytes,
            $"{secure.SecAggBytes} extra bytes");
        Assert.True(Math.Abs(secure.FinalMeanAccuracy - plain.FinalMeanAccuracy) < 0.02,
            $"{secure.FinalMeanAccuracy:P1} secure, {plain.FinalMeanAccuracy:P1} plain");
        Assert.Throws<ColdmindException>(() => (o with { SecureAggregation = true,
            Aggregation = new Coldmind.Swarm.Aggregation("median") }).Validate());
    }

    /// <summary>Each client's value rounds to 16 fraction bits: the sums differ by at most n · 2⁻¹⁷ (and float
    /// rounding).</summary>
    private static void AssertWithinRounding(float[] plain, float[] sum, int n)
    {
        double worst = Enumerable.Range(0, Length).Max(k => Math.Abs(plain[k] - sum[k]));
        Assert.True(worst <= n * Math.Pow(2, -17) + 1e-6, $"the secure sum is {worst:G3} from the plain sum");
    }

    private static double Correlation(double[] a, double[] b)
    {
        double ma = a.Average(), mb = b.Average();
        double cov = a.Zip(b).Sum(p => (p.First - ma) * (p.Second - mb));
        return cov / Math.Sqrt(a.Sum(v => (v - ma) * (v - ma)) * b.Sum(v => (v - mb) * (v - mb)));
    }
}
