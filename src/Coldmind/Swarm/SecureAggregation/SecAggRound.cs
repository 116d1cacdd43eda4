using System.Diagnostics;

namespace Coldmind.Swarm.SecureAggregation;

/// <summary>What secure aggregation cost a round: bytes every client sent and received beyond its plain update, and the
/// crypto's wall time.</summary>
public sealed record SecAggCost(long ExtraBytes, double Seconds);

/// <summary>
/// A whole round of <see cref="SecAggClient"/>s and the <see cref="SecAggServer"/> in one process, as the simulator
/// runs it: every message built and counted, the sum returned. The threshold is a majority (⌊n/2⌋ + 1), so up to
/// n − t clients may drop after sharing their keys (a third of a round, and more).
/// </summary>
public static class SecAggRound
{
    public static float[] Sum(IReadOnlyList<float[]> updates, out SecAggCost cost)
    {
        var clock = Stopwatch.StartNew();
        int n = updates.Count, length = updates[0].Length, threshold = n / 2 + 1;
        var clients = Enumerable.Range(0, n).Select(i => new SecAggClient(i)).ToArray();
        try
        {
            long bytes = 0;
            var keys = clients.Select(c => c.Keys()).ToList();
            long keyBytes = keys.Sum(k => k.Encryption.Length + k.Masking.Length + 4);
            bytes += keyBytes + n * keyBytes; // each client posts its keys and gets everyone's
            var shares = clients.Select(c => (c.Id, Out: c.ShareKeys(keys, threshold))).ToList();
            foreach (var (from, outgoing) in shares)
                foreach (var c in clients)
                {
                    c.Receive(from, outgoing[c.Id]);
                    bytes += 2L * outgoing[c.Id].Length; // up to the coordinator, down to the recipient
                }
            var encoding = new FixedPoint(n);
            var masked = clients.ToDictionary(c => c.Id, c => c.Masked(updates[c.Id], encoding));
            var survivors = masked.Keys.ToArray();
            var unmasking = clients.Select(c => c.Unmask(survivors, [])).ToList();
            bytes += unmasking.Sum(u => u.SelfMaskShares.Sum(s =>
                s.Value.Length + 4L)) + (long)n * n * 4; // the shares, and the survivor list down
            var sum = SecAggServer.Sum(keys, masked, unmasking, threshold, encoding, length);
            cost = new SecAggCost(bytes, clock.Elapsed.TotalSeconds);
            return sum;
        }
        finally
        {
            foreach (var c in clients) c.Dispose();
        }
    }
}
