using System.Buffers.Binary;
using Coldmind.Formats;

namespace Coldmind.Network;

/// <summary>
/// The MACs a receiver has accepted within the freshness window, so a message is accepted once. In memory, or
/// persisted beside a checkpoint (<see cref="PathBeside"/>), so a restarted node still refuses what it accepted
/// before. The file is a log of 40-byte records, appended and flushed to disk before the message is acted on:
/// <code>record: unix-seconds:i64 LE, mac:32 bytes</code>
/// Records older than the window are dropped when the log is compacted (rewritten atomically) or read.
/// </summary>
public sealed class ReplayLog : IDisposable
{
    private const int Record = 8 + MessageAuth.MacBytes;
    private readonly Dictionary<string, long> _seen = [];
    private readonly Lock _gate = new();
    private readonly string? _path;
    private readonly long _window;
    private FileStream? _file;
    private long _records;

    /// <summary>An in-memory log (a client checking replies; a process without a checkpoint).</summary>
    public ReplayLog(TimeSpan window) => _window = (long)window.TotalSeconds;

    /// <summary>A log persisted at <paramref name="path"/>, loaded when it exists; a torn last record (a kill
    /// mid-write) is dropped.</summary>
    public ReplayLog(string path, TimeSpan window) : this(window)
    {
        _path = path;
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (File.Exists(path))
        {
            byte[] bytes;
            try { bytes = File.ReadAllBytes(path); }
            catch (IOException e) { throw new ColdmindException($"Cannot read the replay log '{path}': {e.Message}"); }
            for (int at = 0; at + Record <= bytes.Length; at += Record)
            {
                long t = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(at));
                if (now - t <= _window) _seen[Convert.ToHexString(bytes, at + 8, MessageAuth.MacBytes)] = t;
            }
        }
        Compact();
    }

    /// <summary>Where a process that checkpoints to <paramref name="checkpoint"/> keeps its log.</summary>
    public static string PathBeside(string checkpoint) => checkpoint + ".replay";

    public int Count { get { lock (_gate) return _seen.Count; } }

    /// <summary>Records <paramref name="mac"/> (canonical bytes) signed at <paramref name="t"/>; false when it was seen
    /// already.</summary>
    public bool TryAdd(ReadOnlySpan<byte> mac, long t)
    {
        string key = Convert.ToHexString(mac);
        lock (_gate)
        {
            if (!_seen.TryAdd(key, t)) return false;
            if (_file != null)
            {
                Span<byte> record = stackalloc byte[Record];
                BinaryPrimitives.WriteInt64LittleEndian(record, t);
                mac.CopyTo(record[8..]);
                try
                {
                    _file.Write(record);
                    _file.Flush(flushToDisk: true);
                }
                catch (IOException e) { throw new ColdmindException($"Cannot write the replay log '{_path}': {e.Message}"); }
                _records++;
            }
            if (_seen.Count > 1024 && (_seen.Count > 100_000 || _records > 2 * _seen.Count)) Compact();
            return true;
        }
    }

    /// <summary>Forgets what left the window and rewrites the file with the rest; called under the lock.</summary>
    private void Compact()
    {
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        foreach (var (mac, t) in _seen.ToArray())
            if (now - t > _window) _seen.Remove(mac);
        if (_path == null) return;
        _file?.Dispose();
        AtomicFile.Write(_path, s =>
        {
            Span<byte> record = stackalloc byte[Record];
            foreach (var (mac, t) in _seen)
            {
                BinaryPrimitives.WriteInt64LittleEndian(record, t);
                Convert.FromHexString(mac).CopyTo(record[8..]);
                s.Write(record);
            }
        });
        _records = _seen.Count;
        _file = new FileStream(_path, FileMode.Append, FileAccess.Write, FileShare.Read);
    }

    public void Dispose()
    {
        lock (_gate) _file?.Dispose();
    }
}
