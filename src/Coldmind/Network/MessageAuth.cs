using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Coldmind.Network;

/// <summary>
/// Every message between Coldmind processes carries an HMAC-SHA256 in
/// <c>X-Coldmind-Auth: t=SECONDS,n=NONCE,s=SENDER,r=RECEIVER,k=s|r,mac=BASE64</c> over
/// <code>coldmind-auth/2 \n METHOD \n PATH \n RECEIVER \n SENDER \n KEY-OWNER \n SECONDS \n NONCE \n
/// hex(SHA-256(body))</code>
/// so a message signed for one receiver is refused by every other, and names who sent it. A reply is signed as
/// method <c>REPLY</c> with the request's MAC as its path: it answers that request and no other.
/// <para>The MAC key is a node's key (<see cref="KeyRing"/>): the sender's own (<c>k=s</c>) when it holds only its
/// device key, the receiver's (<c>k=r</c>) when the sender holds the swarm secret and can derive it. A device
/// therefore speaks only as itself, and a device cannot forge a message from another.</para>
/// <para>A receiver accepts a message only when it is addressed to it, its timestamp is within <see cref="Window"/>
/// of its clock, its MAC verifies under one of the keys it holds for the key's owner (two during a rollover), and
/// the MAC's bytes have not been accepted within the window (<see cref="ReplayLog"/>, persisted beside the
/// checkpoint when there is one). Every field must be in its canonical form: the MAC is 32 bytes of canonical
/// base64, so the same MAC cannot be sent again spelt another way.</para>
/// </summary>
public sealed class MessageAuth : IDisposable
{
    public const string Header = "X-Coldmind-Auth";
    public const int MacBytes = 32, NonceBytes = 12;
    public static readonly TimeSpan Window = TimeSpan.FromMinutes(5);
    private const string Version = "coldmind-auth/2", Reply = "REPLY";

    private readonly string? _keyFile;
    private KeyRing _keys;
    private DateTime _keyFileWritten;
    private long _keyFileCheckedAt;
    private ReplayLog _replay = new(Window);

    /// <summary>Who this process is to its peers: a node's address, a FedAvg client's name, a server's
    /// HOST:PORT.</summary>
    public string Self { get; }
    public KeyRing Keys => CurrentKeys();
    /// <summary>Where a key file that fails to reload is reported (the old keys stay in use).</summary>
    public Action<string>? Log { get; set; }

    /// <param name="keyFile">when given, re-read whenever it changes, so keys roll over without a restart</param>
    public MessageAuth(KeyRing keys, string self, string? keyFile = null)
    {
        if (string.IsNullOrEmpty(self) || Encoding.UTF8.GetByteCount(self) > 255 || self.Any(char.IsControl))
            throw new ColdmindException($"A process's identity is 1 to 255 bytes of printable text, got '{self}'.");
        if (keys.NodeId != null && keys.NodeId != self)
            throw new ColdmindException($"The key file holds the key of node '{keys.NodeId}'; this process is '{self}'.");
        (_keys, Self, _keyFile) = (keys, self, keyFile);
        if (keyFile != null) _keyFileWritten = File.GetLastWriteTimeUtc(keyFile);
    }

    /// <summary>Reads <paramref name="path"/> (<see cref="KeyRing.Read"/>); a device key file names its process,
    /// otherwise <paramref name="self"/> does.</summary>
    public static MessageAuth FromKeyFile(string path, string self)
    {
        var keys = KeyRing.Read(path);
        return new MessageAuth(keys, keys.NodeId ?? self, path);
    }

    /// <summary>The same keys, speaking as <paramref name="self"/> (a server once it knows its port).</summary>
    public MessageAuth As(string self) => new(CurrentKeys(), self, _keyFile) { _replay = _replay, Log = Log };

    /// <summary>From now on, accepted MACs are also written to <see cref="ReplayLog.PathBeside"/> the checkpoint, and
    /// those written before are refused.</summary>
    public void PersistReplays(string checkpoint)
    {
        var log = new ReplayLog(ReplayLog.PathBeside(checkpoint), Window);
        _replay.Dispose();
        _replay = log;
    }

    public string Sign(string method, string path, string receiver, ReadOnlySpan<byte> body) =>
        Sign(method, path, receiver, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), body);

    public string Sign(string method, string path, string receiver, long unixSeconds, ReadOnlySpan<byte> body)
    {
        var keys = CurrentKeys();
        bool own = keys.Secrets.Count == 0; // a device signs with its own key; a holder of the secret with the receiver's
        byte[] key = own ? keys.NodeKeys[0] : KeyRing.Derive(keys.Secrets[0], receiver);
        string nonce = Convert.ToHexString(RandomNumberGenerator.GetBytes(NonceBytes));
        var mac = Mac(key, method, path, receiver, Self, own ? Self : receiver, unixSeconds, nonce, body);
        return string.Create(CultureInfo.InvariantCulture,
            $"t={unixSeconds},n={nonce},s={Uri.EscapeDataString(Self)},r={Uri.EscapeDataString(receiver)},k={(own ? 's' : 'r')},mac={Convert.ToBase64String(mac)}");
    }

    /// <summary>The signature of a reply to the request that carried <paramref name="requestHeader"/> (already
    /// verified).</summary>
    public string SignReply(string requestHeader, ReadOnlySpan<byte> body)
    {
        var request = Parse(requestHeader) ?? throw new ArgumentException("Not a verified request's header.",
            nameof(requestHeader));
        return Sign(Reply, request.MacText, request.Sender, body);
    }

    /// <summary>
    /// Checks <paramref name="header"/> for a request <paramref name="method"/> <paramref name="path"/> with
    /// <paramref name="body"/> addressed to this process; on success <paramref name="sender"/> is who signed it,
    /// on failure <paramref name="reason"/> says why in one line.
    /// </summary>
    public bool Verify(string? header, string method, string path, ReadOnlySpan<byte> body, out string sender,
        out string reason)
    {
        sender = "";
        reason = "";
        if (string.IsNullOrEmpty(header)) { reason = $"no {Header} header (the swarm key's signature)"; return false; }
        if (Parse(header) is not { } h) { reason = $"malformed {Header} header"; return false; }
        if (h.Receiver != Self) { reason = $"a message addressed to {h.Receiver}; this is {Self}"; return false; }
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (Math.Abs(now - h.Time) > Window.TotalSeconds)
        { reason = $"timestamp {h.Time} is more than {Window.TotalMinutes} minutes from this clock ({now})"; return false; }
        string owner = h.OwnKey ? h.Sender : h.Receiver;
        var keys = CurrentKeys().KeysOf(owner);
        if (keys.Count == 0) { reason = $"signed with the key of {owner}, which this process cannot check (it holds only its own)"; return false; }
        bool valid = false;
        foreach (var key in keys)
            valid |= CryptographicOperations.FixedTimeEquals(h.Mac, Mac(key, method, path, h.Receiver, h.Sender,
                owner, h.Time, h.Nonce, body));
        if (!valid) { reason = "bad signature (wrong key, or the message was altered)"; return false; }
        if (!_replay.TryAdd(h.Mac, h.Time)) { reason = "replayed message"; return false; }
        sender = h.Sender;
        return true;
    }

    /// <summary>Checks a reply from <paramref name="server"/> to the request this process signed with <paramref
    /// name="requestHeader"/>.</summary>
    public bool VerifyReply(string? header, string requestHeader, string server, ReadOnlySpan<byte> body,
        out string reason)
    {
        var request = Parse(requestHeader) ?? throw new ArgumentException("Not a signed request's header.",
            nameof(requestHeader));
        if (!Verify(header, Reply, request.MacText, body, out string sender, out reason)) return false;
        if (sender == server) return true;
        reason = $"a reply from {sender}, not from {server}";
        return false;
    }

    private sealed record Parsed(long Time, string Nonce, string Sender, string Receiver, bool OwnKey, byte[] Mac,
        string MacText);

    /// <summary>The header's fields in their one canonical spelling, or null.</summary>
    private static Parsed? Parse(string header)
    {
        var parts = header.Split(',');
        if (parts.Length != 6 || !parts[0].StartsWith("t=", StringComparison.Ordinal) || !parts[1].StartsWith("n=",
            StringComparison.Ordinal)
            || !parts[2].StartsWith("s=", StringComparison.Ordinal) || !parts[3].StartsWith("r=",
                StringComparison.Ordinal)
            || parts[4] is not ("k=s" or "k=r") || !parts[5].StartsWith("mac=", StringComparison.Ordinal))
            return null;
        string t = parts[0][2..], nonce = parts[1][2..], mac = parts[5][4..];
        if (t.Length is 0 or > 18 || t[0] == '0' && t.Length > 1 || !t.All(char.IsAsciiDigit)) return null;
        if (nonce.Length != 2 * NonceBytes || !nonce.All(c => char.IsAsciiDigit(c) ||
            c is >= 'A' and <= 'F')) return null;
        var bytes = new byte[MacBytes];
        if (mac.Length != 44 || !Convert.TryFromBase64String(mac, bytes, out int n) || n != MacBytes ||
            Convert.ToBase64String(bytes) != mac) return null;
        if (Unescape(parts[2][2..]) is not { } sender || Unescape(parts[3][2..]) is not { } receiver) return null;
        return new Parsed(long.Parse(t, CultureInfo.InvariantCulture), nonce, sender, receiver, parts[4] == "k=s",
            bytes, mac);
    }

    /// <summary>A percent-escaped id, accepted only as <see cref="Uri.EscapeDataString(string)"/> writes it.</summary>
    private static string? Unescape(string text)
    {
        string id;
        try { id = Uri.UnescapeDataString(text); }
        catch (UriFormatException) { return null; }
        return id.Length > 0 && Uri.EscapeDataString(id) == text ? id : null;
    }

    private static byte[] Mac(byte[] key, string method, string path, string receiver, string sender, string owner,
        long t, string nonce, ReadOnlySpan<byte> body)
    {
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(body, digest);
        string signed = string.Create(CultureInfo.InvariantCulture,
            $"{Version}\n{method}\n{path}\n{receiver}\n{sender}\n{owner}\n{t}\n{nonce}\n{Convert.ToHexStringLower(digest)}");
        return HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(signed));
    }

    /// <summary>The key ring, re-read at most once a second when its file changed; a bad new file leaves the old keys
    /// in use.</summary>
    private KeyRing CurrentKeys()
    {
        if (_keyFile == null) return _keys;
        long now = Environment.TickCount64;
        if (now - Interlocked.Read(ref _keyFileCheckedAt) < 1000) return _keys;
        Interlocked.Exchange(ref _keyFileCheckedAt, now);
        var written = File.GetLastWriteTimeUtc(_keyFile);
        if (written == _keyFileWritten) return _keys;
        _keyFileWritten = written; // a bad file is reported once, not every second
        try
        {
            var keys = KeyRing.Read(_keyFile);
            if (keys.NodeId != null &&
                keys.NodeId != Self) throw new ColdmindException($"it now holds the key of node '{keys.NodeId}'");
            _keys = keys;
            Log?.Invoke($"keys reloaded from {_keyFile}: {keys.Secrets.Count + keys.NodeKeys.Count} accepted");
        }
        catch (Exception e) when (e is ColdmindException or IOException or UnauthorizedAccessException)
        {
            Log?.Invoke($"the key file {_keyFile} was not reloaded ({e.Message}); the keys in use stay");
        }
        return _keys;
    }

    public void Dispose() => _replay.Dispose();
}
