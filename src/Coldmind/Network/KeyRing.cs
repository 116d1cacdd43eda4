using System.Security.Cryptography;
using System.Text;

namespace Coldmind.Network;

/// <summary>
/// The keys a process signs and verifies with, read from a key file:
/// <code>
/// # one key a line; the first of a kind signs, every one verifies (a rollover holds the new and the old key)
/// secret BASE64-OR-HEX        the swarm secret: whoever holds it can derive every node's key
/// node NODE-ID BASE64-OR-HEX  a device's own key, HKDF(secret, NODE-ID): it speaks only as NODE-ID
/// </code>
/// A line with only a key is a swarm secret. Every key is at least <see cref="MinimumKeyBytes"/> bytes of key
/// material once decoded (hex, or canonical base64), and is refused when it looks like text rather than random
/// bytes. A device key is <see cref="Derive"/>: HKDF-SHA256 (RFC 5869) of the secret with the node's id as info,
/// so one device's key does not let it speak as another, and a server that holds the secret checks any device
/// without a table of keys.
/// </summary>
public sealed class KeyRing
{
    public const int MinimumKeyBytes = 32;
    /// <summary>HKDF's salt: a fixed label, so keys derived for Coldmind are not keys of anything else.</summary>
    private static readonly byte[] Salt = "coldmind node key v1"u8.ToArray();

    /// <summary>Swarm secrets, the one that signs first (none when this process holds only its own key).</summary>
    public IReadOnlyList<byte[]> Secrets { get; }
    /// <summary>This device's own keys, the one that signs first (none when it holds the secret).</summary>
    public IReadOnlyList<byte[]> NodeKeys { get; }
    /// <summary>The id the device keys were derived for; null for a holder of the secret.</summary>
    public string? NodeId { get; }

    public KeyRing(IReadOnlyList<byte[]> secrets, IReadOnlyList<byte[]> nodeKeys, string? nodeId)
    {
        if (secrets.Count + nodeKeys.Count == 0) throw new ColdmindException("A key ring without a key.");
        if (secrets.Count > 0 && nodeKeys.Count > 0)
            throw new ColdmindException("A key file holds either the swarm secret or one device's keys, not both.");
        if (secrets.Count > 2 || nodeKeys.Count > 2)
            throw new ColdmindException("A key file holds at most two keys of a kind: the one that signs and, during a rollover, the old one.");
        if (nodeKeys.Count > 0 &&
            string.IsNullOrEmpty(nodeId)) throw new ColdmindException("A device key needs its node id.");
        foreach (var k in secrets.Concat(nodeKeys)) Check(k);
        (Secrets, NodeKeys, NodeId) = (secrets, nodeKeys, nodeKeys.Count > 0 ? nodeId : null);
    }

    public static KeyRing FromSecret(byte[] secret) => new([secret], [], null);

    /// <summary>The key of node <paramref name="nodeId"/> under <paramref name="secret"/>: 32 bytes of
    /// HKDF-SHA256.</summary>
    public static byte[] Derive(byte[] secret, string nodeId) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, secret, 32, Salt, Encoding.UTF8.GetBytes(nodeId));

    /// <summary>The keys that may have signed a message with key id <paramref name="keyOwner"/>, or none when this ring
    /// cannot know them.</summary>
    public IReadOnlyList<byte[]> KeysOf(string keyOwner) =>
        Secrets.Count > 0 ? Secrets.Select(s => Derive(s, keyOwner)).ToArray()
        : keyOwner == NodeId ? NodeKeys : [];

    /// <summary>The device key file of <paramref name="nodeId"/>: one derived key for each secret, in the same
    /// order.</summary>
    public string DeviceFile(string nodeId)
    {
        if (Secrets.Count == 0) throw new ColdmindException("Only a holder of the swarm secret can derive a device's key.");
        CheckId(nodeId);
        return string.Concat(Secrets.Select(s => $"node {nodeId} {Convert.ToBase64String(Derive(s, nodeId))}\n"));
    }

    /// <summary>Reads and checks a key file (format above); anything else is one clear error.</summary>
    public static KeyRing Read(string path)
    {
        if (!File.Exists(path)) throw new ColdmindException($"Key file '{path}' does not exist.");
        var info = new FileInfo(path);
        if (info.Length > 64 * 1024) throw new ColdmindException($"Key file '{path}' is {info.Length} bytes; a key file holds a few lines.");
        return Parse(File.ReadAllText(path), path);
    }

    public static KeyRing Parse(string text, string source)
    {
        var secrets = new List<byte[]>();
        var nodeKeys = new List<byte[]>();
        string? id = null;
        int number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            string line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            string where = $"{source}, line {number}";
            switch (fields)
            {
                case [var key]: secrets.Add(Decode(key, where)); break;
                case ["secret", var key]: secrets.Add(Decode(key, where)); break;
                case ["node", var node, var key]:
                    CheckId(node);
                    if (id != null && id != node) throw new ColdmindException($"{where}: keys of two nodes ({id}, {node}); a device holds its own.");
                    id = node;
                    nodeKeys.Add(Decode(key, where));
                    break;
                default:
                    throw new ColdmindException($"{where}: expected KEY, 'secret KEY' or 'node NODE-ID KEY' (KEY in hex or base64).");
            }
        }
        if (secrets.Count + nodeKeys.Count == 0)
            throw new ColdmindException($"{source} holds no key; make one with `coldmind key new > {source}`.");
        try { return new KeyRing(secrets, nodeKeys, id); }
        catch (ColdmindException e) { throw new ColdmindException($"{source}: {e.Message}"); }
    }

    /// <summary>A key in hex (even length) or canonical base64; whitespace inside, other alphabets or padding tricks
    /// are refused.</summary>
    public static byte[] Decode(string text, string where)
    {
        byte[] key;
        if (text.Length % 2 == 0 && text.All(Uri.IsHexDigit)) key = Convert.FromHexString(text);
        else
        {
            var buffer = new byte[text.Length];
            if (!Convert.TryFromBase64String(text, buffer, out int n) || Convert.ToBase64String(buffer, 0, n) != text)
                throw new ColdmindException($"{where}: the key is neither hex nor canonical base64 (make one with `coldmind key new`).");
            key = buffer[..n];
        }
        try { Check(key); }
        catch (ColdmindException e) { throw new ColdmindException($"{where}: {e.Message}"); }
        return key;
    }

    /// <summary>
    /// At least 32 bytes, not all printable ASCII and not few distinct values: 32 random bytes are all printable
    /// with probability (95/256)³² ≈ 2e-14 and take fewer than 16 distinct values with a smaller one still, so
    /// what fails is a passphrase that happened to parse as base64, not bad luck.
    /// </summary>
    private static void Check(byte[] key)
    {
        if (key.Length < MinimumKeyBytes)
            throw new ColdmindException($"the key has {key.Length} bytes of key material; use at least {MinimumKeyBytes} random bytes (`coldmind key new`).");
        if (key.All(b => b is >= 0x20 and < 0x7f) || key.Distinct().Count() < 16)
            throw new ColdmindException("the key does not look random (text, or few distinct bytes); make one with `coldmind key new`.");
    }

    private static void CheckId(string id)
    {
        if (id.Length == 0 || Encoding.UTF8.GetByteCount(id) > 255 || id.Any(c => char.IsControl(c) ||
            char.IsWhiteSpace(c)))
            throw new ColdmindException($"A node id is 1 to 255 bytes without spaces or control characters, got '{id}'.");
    }
}
