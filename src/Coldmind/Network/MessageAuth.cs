using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Coldmind.Network;

/// <summary>
/// Peers that share a key sign every message: HMAC-SHA256 over what the message is (its method and path, or the
/// request it answers), a Unix timestamp, a random nonce and the body, sent as
/// <c>X-Coldmind-Auth: t=SECONDS,n=NONCE,mac=BASE64</c>. A receiver accepts a message only with a valid MAC, a
/// timestamp within <see cref="Window"/> of its clock, and a MAC it has not seen within that window (no replay).
/// </summary>
public sealed class MessageAuth
{
    public const string Header = "X-Coldmind-Auth";
    public const int MinimumKeyBytes = 16;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(5);

    private readonly byte[] _key;
    private readonly ConcurrentDictionary<string, long> _seen = new();

    public MessageAuth(byte[] key)
    {
        if (key.Length < MinimumKeyBytes) throw new ColdmindException($"The shared key has {key.Length} bytes; use at least {MinimumKeyBytes} (e.g. head -c 32 /dev/urandom | base64 > key).");
        _key = key;
    }

    /// <summary>The key is the file's bytes with surrounding whitespace trimmed.</summary>
    public static MessageAuth FromKeyFile(string path)
    {
        if (!File.Exists(path)) throw new ColdmindException($"Key file '{path}' does not exist.");
        return new MessageAuth(Encoding.UTF8.GetBytes(File.ReadAllText(path).Trim()));
    }

    public string Sign(string context, ReadOnlySpan<byte> body) => Sign(context, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), body);

    public string Sign(string context, long unixSeconds, ReadOnlySpan<byte> body)
    {
        string nonce = Convert.ToHexString(RandomNumberGenerator.GetBytes(12));
        return $"t={unixSeconds.ToString(CultureInfo.InvariantCulture)},n={nonce},mac={Convert.ToBase64String(Mac(context, unixSeconds, nonce, body))}";
    }

    /// <summary>Checks <paramref name="header"/> for <paramref name="body"/>; on failure <paramref name="reason"/> says why in one line.</summary>
    public bool Verify(string? header, string context, ReadOnlySpan<byte> body, out string reason)
    {
        reason = "";
        if (string.IsNullOrEmpty(header)) { reason = $"no {Header} header (the shared key's signature)"; return false; }
        var parts = header.Split(',');
        if (parts.Length != 3 || !parts[0].StartsWith("t=", StringComparison.Ordinal) || !parts[1].StartsWith("n=", StringComparison.Ordinal)
            || !parts[2].StartsWith("mac=", StringComparison.Ordinal) || !long.TryParse(parts[0].AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out long t))
        { reason = $"malformed {Header} header"; return false; }
        string nonce = parts[1][2..];
        byte[] mac;
        try { mac = Convert.FromBase64String(parts[2][4..]); }
        catch (FormatException) { reason = $"malformed {Header} header"; return false; }
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (Math.Abs(now - t) > Window.TotalSeconds) { reason = $"timestamp {t} is more than {Window.TotalMinutes} minutes from this clock ({now})"; return false; }
        if (!CryptographicOperations.FixedTimeEquals(mac, Mac(context, t, nonce, body))) { reason = "bad signature (wrong key, or the message was altered)"; return false; }
        if (!_seen.TryAdd(parts[2], t)) { reason = "replayed message"; return false; }
        if (_seen.Count > 100_000)
            foreach (var (seen, at) in _seen)
                if (now - at > Window.TotalSeconds) _seen.TryRemove(seen, out _);
        return true;
    }

    private byte[] Mac(string context, long unixSeconds, string nonce, ReadOnlySpan<byte> body)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key);
        hmac.AppendData(Encoding.UTF8.GetBytes($"{context}\n{unixSeconds.ToString(CultureInfo.InvariantCulture)}\n{nonce}\n"));
        hmac.AppendData(body);
        return hmac.GetHashAndReset();
    }

    /// <summary>What a reply's signature covers: the request's own signature, so a reply cannot be replayed for another request.</summary>
    public static string ReplyContext(string requestAuth) => "reply " + requestAuth;
}
