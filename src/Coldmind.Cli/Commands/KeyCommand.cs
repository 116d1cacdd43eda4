using System.CommandLine;
using System.Security.Cryptography;
using Coldmind.Network;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind key new` prints a swarm secret (32 random bytes, base64); `coldmind key derive --secret FILE --node ID`
/// prints device ID's key file: HKDF of each secret in FILE (two during a rollover) with the id (<see
/// cref="KeyRing"/>).
/// </summary>
internal static class KeyCommand
{
    public static Command Create()
    {
        var create = new Command("new",
            "Print a new swarm secret: 32 random bytes in base64, the first line of a key file.");
        create.SetAction(_ =>
        {
            Console.WriteLine($"secret {Convert.ToBase64String(RandomNumberGenerator.GetBytes(KeyRing.MinimumKeyBytes))}");
            return 0;
        });
        var secret = new Option<string>("--secret") { Description = "the swarm's key file (its secrets)",
            Required = true };
        var node = new Option<string>("--node") { Description = "the device's id: a gossip node's HOST:PORT, a FedAvg client's name", Required = true };
        var derive = new Command("derive",
            "Print a device's key file: its key derived from the swarm secret, so it can speak only as itself.") { secret, node };
        derive.SetAction(r =>
        {
            Console.Write(KeyRing.Read(r.GetValue(secret)!).DeviceFile(r.GetValue(node)!));
            return 0;
        });
        return new Command("key",
            "Make the keys a swarm signs its messages with: a secret, and each device's own key.") { create, derive };
    }
}
