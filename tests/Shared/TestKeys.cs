using System.Security.Cryptography;
using Coldmind.Network;

namespace Coldmind.Tests;

/// <summary>Fresh swarm secrets for tests: 32 random bytes, as `coldmind key new` makes them.</summary>
public static class TestKeys
{
    public static KeyRing Secret() => KeyRing.FromSecret(RandomNumberGenerator.GetBytes(KeyRing.MinimumKeyBytes));

    public static void WriteSecret(string path) =>
        File.WriteAllText(path,
            $"secret {Convert.ToBase64String(RandomNumberGenerator.GetBytes(KeyRing.MinimumKeyBytes))}\n");
}
