namespace Coldmind.Formats;

/// <summary>Writes a file completely or not at all: into a temporary file beside it, flushed, then renamed over.</summary>
public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new ColdmindException($"Cannot write '{path}': the folder '{dir}' does not exist.");
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e)
        {
            try { File.Delete(temp); } catch (IOException) { }
            if (e is ColdmindException) throw;
            if (e is IOException or UnauthorizedAccessException)
                throw new ColdmindException($"Cannot write '{path}': {e.Message}", e);
            throw;
        }
    }
}
