using System.IO.Compression;

namespace Coldmind.Formats;

/// <summary>Opens input files with readable errors, transparently un-gzipping ".gz" content (by its magic bytes).</summary>
public static class InputFile
{
    public static Stream Open(string path)
    {
        if (!File.Exists(path)) throw new ColdmindException($"File not found: '{path}'.");
        Stream s;
        try { s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ColdmindException($"Cannot read '{path}': {e.Message}", e);
        }
        return MaybeGzip(s);
    }

    public static Stream MaybeGzip(Stream s)
    {
        if (!s.CanSeek) return s;
        int b0 = s.ReadByte(), b1 = s.ReadByte();
        s.Position = 0;
        return b0 == 0x1f && b1 == 0x8b ? new GZipStream(s, CompressionMode.Decompress) : s;
    }

    /// <summary>Reads exactly buffer.Length bytes or throws a message naming the file and what was cut short.</summary>
    public static void ReadExactly(Stream s, Span<byte> buffer, string path, string what)
    {
        try
        {
            int got = 0;
            while (got < buffer.Length)
            {
                int n = s.Read(buffer[got..]);
                if (n == 0) throw new ColdmindException($"'{path}' is truncated: it ends inside the {what} ({got} of {buffer.Length} bytes).");
                got += n;
            }
        }
        catch (InvalidDataException e)
        {
            throw new ColdmindException($"'{path}' is corrupt: {e.Message}", e);
        }
    }
}
