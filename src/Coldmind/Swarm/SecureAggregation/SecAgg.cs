using System.Security.Cryptography;
using System.Text;

namespace Coldmind.Swarm.SecureAggregation;

/// <summary>A client's two public keys of a round: one to encrypt shares to it, one its pairwise masks come
/// from.</summary>
public sealed record SecAggKeys(int Id, byte[] Encryption, byte[] Masking);

/// <summary>What a surviving client reveals to unmask the sum: shares of survivors' self-mask seeds and of dropped
/// clients' masking keys.</summary>
public sealed record SecAggUnmasking(int From, IReadOnlyDictionary<int, byte[]> SelfMaskShares,
    IReadOnlyDictionary<int, byte[]> MaskingKeyShares);

/// <summary>
/// One client of secure aggregation (Bonawitz et al. 2017, the semi-honest protocol with double masking): the
/// coordinator relays its messages and learns only the sum of the survivors' updates.
/// <list type="number">
/// <item><see cref="Keys"/>: two P-256 key pairs (the SDK's <see cref="ECDiffieHellman"/>), c to encrypt and s to
/// mask.</item>
/// <item><see cref="ShareKeys"/>: a self-mask seed b; t-of-n Shamir shares of b and of s's private key, one of each to
/// every client, encrypted (AES-GCM) under the key agreed with its c.</item>
/// <item><see cref="Masked"/>: the update as 32-bit fixed point (<see cref="FixedPoint"/>) plus PRG(b) plus, for
/// every other client j, ±PRG(s_ij) (+ when i &lt; j), s_ij agreed by ECDH of the s keys: the pairwise masks cancel in
/// the sum, b's do not.</item>
/// <item><see cref="Unmask"/>: for each client that sent its masked update, the share of its b; for each that did
/// not (dropped), the share of its s — never both for one client, so no update is ever unmasked alone.</item>
/// </list>
/// </summary>
public sealed class SecAggClient : IDisposable
{
    private readonly ECDiffieHellman _c = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
    private readonly ECDiffieHellman _s = ECDiffieHellman.Create(ECCurve.NamedCurves.nistP256);
    private readonly byte[] _selfSeed = RandomNumberGenerator.GetBytes(32);
    private readonly Dictionary<int, (byte[] B, byte[] S)> _received = [];
    private IReadOnlyList<SecAggKeys> _peers = [];

    public int Id { get; }

    public SecAggClient(int id) => Id = id;

    public SecAggKeys Keys() => new(Id, _c.ExportSubjectPublicKeyInfo(), _s.ExportSubjectPublicKeyInfo());

    /// <summary>The encrypted shares for every client of <paramref name="peers"/> (this one included), by
    /// recipient.</summary>
    public Dictionary<int, byte[]> ShareKeys(IReadOnlyList<SecAggKeys> peers, int threshold)
    {
        _peers = peers;
        var b = Shamir.Split(_selfSeed, peers.Count, threshold);
        var s = Shamir.Split(_s.ExportECPrivateKey(), peers.Count, threshold);
        var result = new Dictionary<int, byte[]>();
        for (int k = 0; k < peers.Count; k++)
        {
            // share k is at x = k + 1, k the recipient's place in the round's list of clients
            byte[] plain = [(byte)b[k].Length, .. b[k], .. s[k]];
            result[peers[k].Id] = Seal(SharedKey(_c, peers[k].Encryption, "shares"), plain, Id, peers[k].Id);
        }
        return result;
    }

    /// <summary>Takes the shares <paramref name="from"/> sent this client.</summary>
    public void Receive(int from, byte[] ciphertext)
    {
        var sender = _peers.Single(p => p.Id == from);
        var plain = Open(SharedKey(_c, sender.Encryption, "shares"), ciphertext, from, Id);
        int n = plain[0];
        _received[from] = (plain[1..(1 + n)], plain[(1 + n)..]);
    }

    /// <summary>The masked update: fixed point + PRG(b) + Σ_j ±PRG(s_ij), mod 2³².</summary>
    public uint[] Masked(ReadOnlySpan<float> update, FixedPoint encoding)
    {
        var y = encoding.Encode(update);
        MaskExpander.Apply(_selfSeed, y, +1);
        foreach (var peer in _peers.Where(p => p.Id != Id))
            MaskExpander.Apply(SharedKey(_s, peer.Masking, "mask"), y, Id < peer.Id ? +1 : -1);
        return y;
    }

    /// <summary>This client's shares for the unmasking: of b for the <paramref name="survivors"/>, of s for the
    /// <paramref name="dropped"/>.</summary>
    public SecAggUnmasking Unmask(IReadOnlyCollection<int> survivors, IReadOnlyCollection<int> dropped)
    {
        if (survivors.Intersect(dropped).Any()) throw new InvalidOperationException("A client cannot both have sent its update and dropped.");
        return new SecAggUnmasking(Id,
            survivors.Where(_received.ContainsKey).ToDictionary(i => i, i => _received[i].B),
            dropped.Where(_received.ContainsKey).ToDictionary(i => i, i => _received[i].S));
    }

    /// <summary>HKDF of the ECDH secret of <paramref name="own"/> with <paramref name="peerPublic"/>: 32 bytes for
    /// <paramref name="purpose"/>.</summary>
    internal static byte[] SharedKey(ECDiffieHellman own, byte[] peerPublic, string purpose)
    {
        using var peer = ECDiffieHellman.Create();
        peer.ImportSubjectPublicKeyInfo(peerPublic, out _);
        var secret = own.DeriveRawSecretAgreement(peer.PublicKey);
        return HKDF.DeriveKey(HashAlgorithmName.SHA256, secret, 32, "coldmind secagg v1"u8.ToArray(),
            Encoding.UTF8.GetBytes(purpose));
    }

    private static byte[] Seal(byte[] key, byte[] plain, int from, int to)
    {
        using var gcm = new AesGcm(key, 16);
        var nonce = RandomNumberGenerator.GetBytes(12);
        var cipher = new byte[plain.Length];
        var tag = new byte[16];
        gcm.Encrypt(nonce, plain, cipher, tag, Encoding.UTF8.GetBytes($"{from}>{to}"));
        return [.. nonce, .. tag, .. cipher];
    }

    private static byte[] Open(byte[] key, byte[] sealedShare, int from, int to)
    {
        if (sealedShare.Length < 28) throw new CryptographicException("A share too short to be sealed.");
        using var gcm = new AesGcm(key, 16);
        var plain = new byte[sealedShare.Length - 28];
        gcm.Decrypt(sealedShare.AsSpan(0, 12), sealedShare.AsSpan(28), sealedShare.AsSpan(12, 16), plain,
            Encoding.UTF8.GetBytes($"{from}>{to}"));
        return plain;
    }

    public void Dispose()
    {
        _c.Dispose();
        _s.Dispose();
    }
}

/// <summary>
/// The coordinator's side: the sum of the masked updates of the survivors, with every self mask of a survivor and
/// every pairwise mask of a dropped client removed once at least t survivors have sent their shares.
/// </summary>
public static class SecAggServer
{
    public static float[] Sum(IReadOnlyList<SecAggKeys> round, IReadOnlyDictionary<int, uint[]> masked,
        IReadOnlyList<SecAggUnmasking> unmasking,
        int threshold, FixedPoint encoding, int length)
    {
        if (unmasking.Count < threshold) throw new ColdmindException($"{unmasking.Count} clients answered the unmasking; {threshold} are needed.");
        var place = round.Select((k, i) => (k.Id, X: (byte)(i + 1))).ToDictionary(p => p.Id, p => p.X);
        var sum = new uint[length];
        foreach (var y in masked.Values)
            for (int i = 0; i < length; i++) sum[i] += y[i];
        foreach (int survivor in masked.Keys)
        {
            var shares = unmasking.Where(u => u.SelfMaskShares.ContainsKey(survivor)).Take(threshold).ToList();
            var seed = Shamir.Combine(shares.Select(u => place[u.From]).ToList(), shares.Select(u =>
                u.SelfMaskShares[survivor]).ToList());
            MaskExpander.Apply(seed, sum, -1);
        }
        foreach (var lost in round.Where(k => !masked.ContainsKey(k.Id)))
        {
            var shares = unmasking.Where(u => u.MaskingKeyShares.ContainsKey(lost.Id)).Take(threshold).ToList();
            var key = Shamir.Combine(shares.Select(u => place[u.From]).ToList(), shares.Select(u =>
                u.MaskingKeyShares[lost.Id]).ToList());
            using var s = ECDiffieHellman.Create();
            s.ImportECPrivateKey(key, out _);
            // each survivor j added ±PRG(s_jl) for the lost client l: remove it as j did (+ when j < l)
            foreach (int survivor in masked.Keys)
                MaskExpander.Apply(SecAggClient.SharedKey(s, round.Single(k => k.Id == survivor).Masking, "mask"),
                    sum, survivor < lost.Id ? -1 : +1);
        }
        return encoding.Decode(sum);
    }
}

/// <summary>
/// Updates as 32-bit fixed point for masking mod 2³²: v ↦ round(v·2^<see cref="FractionBits"/>), clamped so that the
/// sum
/// of <see cref="Clients"/> values cannot wrap. 16 fraction bits resolve 1.5e-5; ten clients may send values up to ±3
/// 276.
/// </summary>
public sealed record FixedPoint(int Clients, int FractionBits = 16)
{
    private double Scale => Math.Pow(2, FractionBits);

    /// <summary>The largest magnitude a value may have: the sum of every client's stays below 2³¹.</summary>
    public double Range => (int.MaxValue / (double)Clients - 1) / Scale;

    public uint[] Encode(ReadOnlySpan<float> values)
    {
        var result = new uint[values.Length];
        for (int i = 0; i < values.Length; i++) result[i] = (uint)(int)Math.Round(Math.Clamp(values[i], -Range,
            Range) * Scale);
        return result;
    }

    public float[] Decode(ReadOnlySpan<uint> sum)
    {
        var result = new float[sum.Length];
        for (int i = 0; i < sum.Length; i++) result[i] = (float)((int)sum[i] / Scale);
        return result;
    }
}
