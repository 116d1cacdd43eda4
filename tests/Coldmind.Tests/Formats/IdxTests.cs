using System.IO.Compression;
using Xunit;
using Coldmind.Data;
using Coldmind.Formats;

namespace Coldmind.Tests;

public class IdxTests
{
    [Theory]
    [InlineData(false)] [InlineData(true)]
    public void Round_trips_plain_and_gzip(bool gzip)
    {
        using var dir = new TempDir();
        var values = Enumerable.Range(0, 2 * 3 * 4).Select(i => (byte)(i * 7)).ToArray();
        var path = dir.File("a.idx");
        Idx.Write(path, [2, 3, 4], values);
        if (gzip) path = Gzip(path);
        var read = Idx.Read(path);
        Assert.Equal([2, 3, 4], read.Shape);
        Assert.Equal(values, read.Values);
    }

    [Fact]
    public void Truncated_file_names_the_file_and_the_missing_part()
    {
        using var dir = new TempDir();
        var path = dir.File("t.idx");
        Idx.Write(path, [10, 5], new byte[50]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..30]);
        var e = Assert.Throws<ColdmindException>(() => Idx.Read(path));
        Assert.Contains("truncated", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Truncated_gzip_is_reported_not_crashed()
    {
        using var dir = new TempDir();
        var path = dir.File("t.idx");
        Idx.Write(path, [100, 50], Enumerable.Range(0, 5000).Select(i => (byte)i).ToArray());
        var gz = Gzip(path);
        var bytes = File.ReadAllBytes(gz);
        File.WriteAllBytes(gz, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<ColdmindException>(() => Idx.Read(gz));
        Assert.Contains(gz, e.Message);
    }

    [Fact]
    public void Bad_magic_and_missing_file_are_clear()
    {
        using var dir = new TempDir();
        var path = dir.File("x.idx");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5, 6, 7, 8]);
        Assert.Contains("not an IDX file", Assert.Throws<ColdmindException>(() => Idx.Read(path)).Message);
        Assert.Contains("File not found", Assert.Throws<ColdmindException>(() => Idx.Read(dir.File("none.idx"))).Message);
    }

    [Fact]
    public void Label_and_image_counts_must_agree()
    {
        using var dir = new TempDir();
        Idx.Write(dir.File("i"), [3, 2, 2], new byte[12]);
        Idx.Write(dir.File("l"), [2], new byte[2]);
        var e = Assert.Throws<ColdmindException>(() => BuiltinData.FromIdx(dir.File("i"), dir.File("l"), "x", ["a", "b"]));
        Assert.Contains("2 labels for 3 images", e.Message);
    }

    private static string Gzip(string path)
    {
        var gz = path + ".gz";
        using (var src = File.OpenRead(path))
        using (var dst = new GZipStream(File.Create(gz), CompressionLevel.Fastest)) src.CopyTo(dst);
        return gz;
    }
}
