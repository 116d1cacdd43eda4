using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Coldmind.Swarm.SecureAggregation;

/// <summary>
/// The PRG that expands a 32-byte seed into a mask of 32-bit words: AES-256 in counter mode (the SDK's AES on
/// counter blocks), so a mask reveals nothing of its seed and two parties with the same seed get the same mask.
/// </summary>
public static class MaskExpander
{
    /// <summary>Adds (<paramref name="sign"/> = 1) or subtracts (−1) the mask of <paramref name="seed"/> to <paramref
    /// name="values"/>, mod 2³².</summary>
    public static void Apply(ReadOnlySpan<byte> seed, Span<uint> values, int sign)
    {
        using var aes = Aes.Create();
        aes.Key = seed.ToArray();
        var counters = new byte[16 * 256];
        var stream = new byte[counters.Length];
        for (int start = 0; start < values.Length; start += counters.Length / 4)
        {
            int words = Math.Min(counters.Length / 4, values.Length - start);
            int blocks = (words + 3) / 4;
            for (int b = 0; b < blocks; b++) BinaryPrimitives.WriteInt64LittleEndian(counters.AsSpan(16 * b),
                start / 4 + b);
            aes.EncryptEcb(counters.AsSpan(0, 16 * blocks), stream.AsSpan(0, 16 * blocks), PaddingMode.None);
            for (int w = 0; w < words; w++)
            {
                uint m = BinaryPrimitives.ReadUInt32LittleEndian(stream.AsSpan(4 * w));
                values[start + w] = sign > 0 ? values[start + w] + m : values[start + w] - m;
            }
        }
    }
}
