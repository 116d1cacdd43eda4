using Coldmind.Tensors;

namespace Coldmind.Tests;

/// <summary>Random corruptions of a valid file, for reader robustness tests.</summary>
internal static class Fuzzing
{
    /// <summary>A third truncated at a random length, the rest with 1–8 random bit flips.</summary>
    public static IEnumerable<byte[]> Mutants(byte[] seed, Rng rng, int count)
    {
        for (int i = 0; i < count; i++)
        {
            var bytes = (byte[])seed.Clone();
            if (i % 3 == 0) bytes = bytes[..rng.NextInt(bytes.Length)];
            else
                for (int f = rng.NextInt(8) + 1; f > 0; f--) bytes[rng.NextInt(bytes.Length)] ^= (byte)(1 << rng.NextInt(8));
            yield return bytes;
        }
    }
}
