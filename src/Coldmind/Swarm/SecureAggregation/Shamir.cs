using System.Security.Cryptography;

namespace Coldmind.Swarm.SecureAggregation;

/// <summary>
/// Shamir's t-of-n secret sharing over GF(2⁸) (the AES field, x⁸ + x⁴ + x³ + x + 1), byte by byte: each byte of
/// the secret is the constant term of a random polynomial of degree t − 1, and share x (1..n) holds its values at x.
/// Any t shares give the secret back by Lagrange interpolation at 0; fewer say nothing about it.
/// </summary>
public static class Shamir
{
    private static readonly byte[] Exp = new byte[512], Log = new byte[256];

    static Shamir()
    {
        int v = 1;
        for (int i = 0; i < 255; i++)
        {
            Exp[i] = Exp[i + 255] = (byte)v;
            Log[v] = (byte)i;
            v ^= v << 1; // × 3, a generator of the field's multiplicative group
            if (v > 0xFF) v ^= 0x11B;
        }
    }

    private static byte Mul(byte a, byte b) => a == 0 || b == 0 ? (byte)0 : Exp[Log[a] + Log[b]];

    private static byte Div(byte a, byte b) => a == 0 ? (byte)0 : Exp[Log[a] + 255 - Log[b]];

    /// <summary>n shares of <paramref name="secret"/>, any <paramref name="threshold"/> of which recover it; share k is
    /// at x = k + 1.</summary>
    public static byte[][] Split(ReadOnlySpan<byte> secret, int shares, int threshold)
    {
        if (threshold < 1 || threshold > shares ||
            shares > 255) throw new ArgumentException($"{threshold} of {shares} shares: need 1 ≤ t ≤ n ≤ 255.");
        var result = new byte[shares][];
        for (int k = 0; k < shares; k++) result[k] = new byte[secret.Length];
        var coefficients = new byte[threshold];
        for (int b = 0; b < secret.Length; b++)
        {
            coefficients[0] = secret[b];
            RandomNumberGenerator.Fill(coefficients.AsSpan(1));
            for (int k = 0; k < shares; k++)
            {
                byte x = (byte)(k + 1), y = 0;
                for (int c = threshold - 1; c >= 0; c--) y = (byte)(Mul(y, x) ^ coefficients[c]); // Horner
                result[k][b] = y;
            }
        }
        return result;
    }

    /// <summary>The secret from shares at distinct <paramref name="xs"/> (1..255), as many as the threshold or
    /// more.</summary>
    public static byte[] Combine(IReadOnlyList<byte> xs, IReadOnlyList<byte[]> shares)
    {
        if (xs.Count != shares.Count || xs.Count == 0 || xs.Distinct().Count() != xs.Count || xs.Contains((byte)0))
            throw new ArgumentException("Shares need distinct, non-zero x.");
        var secret = new byte[shares[0].Length];
        for (int j = 0; j < xs.Count; j++)
        {
            // Lagrange basis at 0: Π_{m≠j} x_m / (x_m − x_j); subtraction is xor
            byte basis = 1;
            for (int m = 0; m < xs.Count; m++)
                if (m != j) basis = Mul(basis, Div(xs[m], (byte)(xs[m] ^ xs[j])));
            for (int b = 0; b < secret.Length; b++) secret[b] ^= Mul(basis, shares[j][b]);
        }
        return secret;
    }
}
