using System.Buffers.Binary;
using System.IO.Compression;
using System.Text.Json;
using System.Text;
using Xunit;
using Coldmind.Data;
using Coldmind.Formats;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("coldmind-test-").FullName;
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() => Directory.Delete(Path, recursive: true);
}

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

public class CsvTests
{
    [Fact]
    public void Header_is_detected_and_label_found_by_name_or_index()
    {
        using var dir = new TempDir();
        var path = dir.File("t.csv");
        File.WriteAllText(path, "a,kind,b\n1,cat,2\n3,dog,4.5\n5,cat,-6e-1\n");
        var byName = CsvTable.Read(path, "kind");
        Assert.Equal(["a", "b"], byName.FeatureNames);
        Assert.Equal([1f, 2f, 3f, 4.5f, 5f, -0.6f], byName.Features);
        Assert.Equal(["cat", "dog", "cat"], byName.LabelValues);
        var byIndex = CsvTable.Read(path, "1");
        Assert.Equal(byName.Features, byIndex.Features);
        var data = BuiltinData.FromCsv(path, "kind");
        Assert.Equal(["cat", "dog"], data.ClassNames);
        Assert.Equal([0, 1, 0], data.Labels);
    }

    [Fact]
    public void Headerless_file_uses_the_last_column()
    {
        using var dir = new TempDir();
        var path = dir.File("t.csv");
        File.WriteAllText(path, "1,2,0\n3,4,1\n");
        var t = CsvTable.Read(path);
        Assert.Equal(["0", "1"], t.LabelValues);
        Assert.Equal(4, t.Features.Length);
    }

    [Theory]
    [InlineData("a,b,y\n1,2,0\n3,oops,1\n", null, "line 3, column 2 ('b'): 'oops' is not a number")]
    [InlineData("a,b,y\n1,2,0\n3,1\n", null, "line 3: 2 fields, but the table has 3 columns")]
    [InlineData("a,b,y\n1,2,0\n", "label", "has no column named 'label'")]
    [InlineData("1,2,0\n", "y", "has no header row")]
    [InlineData("a,b,y\n1,2,0\n", "7", "Label column 7 is out of range")]
    [InlineData("a,b,y\n", null, "has no data rows")]
    public void Bad_tables_get_a_message_naming_line_and_value(string text, string? label, string expected)
    {
        using var dir = new TempDir();
        var path = dir.File("bad.csv");
        File.WriteAllText(path, text);
        var e = Assert.Throws<ColdmindException>(() => CsvTable.Read(path, label));
        Assert.Contains(expected, e.Message);
        Assert.Contains("bad.csv", e.Message);
    }
}

public class SafetensorsTests
{
    [Fact]
    public void Round_trips_tensors_and_metadata_with_the_reference_layout()
    {
        using var dir = new TempDir();
        var path = dir.File("m.safetensors");
        var a = Tensor.Normal(new Rng(1), 1f, 3, 5);
        var b = Tensor.FromArray([1f, 2f, 3f], 3);
        TensorFile.Write(path, [("layer.weight", a), ("layer.bias", b), ("view", a.Transpose())], new Dictionary<string, string> { ["k"] = "v" });

        var bytes = File.ReadAllBytes(path);
        long headerLen = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, headerLen % 8); // data section 8-byte aligned, as the reference writer does
        using var header = JsonDocument.Parse(Encoding.UTF8.GetString(bytes, 8, (int)headerLen));
        var w = header.RootElement.GetProperty("layer.weight");
        Assert.Equal("F32", w.GetProperty("dtype").GetString());
        Assert.Equal([3, 5], w.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(8 + headerLen + 15 * 4 + 3 * 4 + 15 * 4, bytes.Length);

        var read = Safetensors.Read(path);
        Assert.Equal(a.ToArray(), read.Tensors["layer.weight"].ToArray());
        Assert.Equal(b.ToArray(), read.Tensors["layer.bias"].ToArray());
        Assert.Equal(a.Transpose().ToArray(), read.Tensors["view"].ToArray());
        Assert.Equal([5, 3], read.Tensors["view"].Shape);
        Assert.Equal("v", read.Metadata["k"]);
    }

    [Fact]
    public void Reads_the_real_stories260K_checkpoint()
    {
        var path = SharedFiles.Require("models/stories260K/stories260K.safetensors");
        var file = Safetensors.Read(path);
        Assert.NotEmpty(file.Tensors);
        Assert.All(file.Tensors.Values, t => Assert.All(t.ToArray(), v => Assert.True(float.IsFinite(v))));
    }

    [Fact]
    public void Corrupt_and_truncated_files_are_refused_clearly()
    {
        using var dir = new TempDir();
        var path = dir.File("m.safetensors");
        TensorFile.Write(path, [("w", Tensor.Zeros(4, 4))]);
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^10]);
        Assert.Contains("does not fit", Assert.Throws<ColdmindException>(() => Safetensors.Read(path)).Message);
        bytes[12] = (byte)'#';
        File.WriteAllBytes(path, bytes);
        Assert.Contains("corrupt safetensors header", Assert.Throws<ColdmindException>(() => Safetensors.Read(path)).Message);
        File.WriteAllBytes(path, [1, 2, 3]);
        Assert.Contains("truncated", Assert.Throws<ColdmindException>(() => Safetensors.Read(path)).Message);
    }

    [Fact]
    public void Int8_and_uint8_tensors_round_trip_and_out_of_range_values_are_refused()
    {
        using var dir = new TempDir();
        var path = dir.File("ints.safetensors");
        var i8 = Tensor.FromArray([-128f, -1f, 0f, 127f], 2, 2);
        var u8 = Tensor.FromArray([0f, 1f, 255f], 3);
        TensorFile.Write(path, [("i8", i8), ("u8", u8), ("f", Tensor.Full(0.5f, 2))], dtypes: new Dictionary<string, string> { ["i8"] = "I8", ["u8"] = "U8" });
        Assert.Equal(8 + 4 + 3 + 8, new FileInfo(path).Length - (long)BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(path)));
        var read = Safetensors.Read(path);
        Assert.Equal(i8.ToArray(), read.Tensors["i8"].ToArray());
        Assert.Equal(u8.ToArray(), read.Tensors["u8"].ToArray());
        Assert.Equal("I8", read.DTypes["i8"]);
        Assert.Equal("U8", read.DTypes["u8"]);
        var e = Assert.Throws<ColdmindException>(() => TensorFile.Write(path, [("bad", Tensor.FromArray([1.5f], 1))], dtypes: new Dictionary<string, string> { ["bad"] = "I8" }));
        Assert.Contains("not a whole number in [-128, 127]", e.Message);
    }

    [Fact]
    public void Fuzzed_files_never_crash_the_reader()
    {
        using var dir = new TempDir();
        var path = dir.File("seed.safetensors");
        var rng = new Rng(77);
        TensorFile.Write(path, [("a.weight", Tensor.Normal(rng, 1f, 4, 8)), ("b", Tensor.Normal(rng, 1f, 16))], new Dictionary<string, string> { ["kind"] = "test" });
        var seed = File.ReadAllBytes(path);
        var mutant = dir.File("mutant.safetensors");
        int refused = 0;
        foreach (var bytes in Fuzzing.Mutants(seed, rng, 3000))
        {
            File.WriteAllBytes(mutant, bytes);
            try { Safetensors.Read(mutant); }
            catch (ColdmindException) { refused++; }
        }
        Assert.True(refused > 1000, $"only {refused} of 3000 mutants were refused");
    }

    [Fact]
    public void A_failed_write_leaves_the_old_file_and_no_temporary()
    {
        using var dir = new TempDir();
        var path = dir.File("m.safetensors");
        TensorFile.Write(path, [("w", Tensor.Full(1f, 2))]);
        var before = File.ReadAllBytes(path);
        Assert.Throws<ColdmindException>(() => TensorFile.Write(path, [("w", Tensor.Zeros(2)), ("w", Tensor.Zeros(2))]));
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s => { s.WriteByte(1); throw new InvalidOperationException("disk on fire"); }));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.Path));
    }
}

public class SplitTests
{
    [Fact]
    public void Stratified_split_keeps_class_balance_and_covers_everything_once()
    {
        var digits = BuiltinData.Digits();
        Assert.Equal(1797, digits.Count);
        Assert.Equal([1, 8, 8], digits.SampleShape);
        var s = DataSplits.Stratified(digits, 0.1, 0.2, seed: 7);
        Assert.Equal(digits.Count, s.Train.Count + s.Validation.Count + s.Test.Count);
        for (int c = 0; c < 10; c++)
        {
            double whole = digits.Labels.Count(y => y == c) / (double)digits.Count;
            double test = s.Test.Labels.Count(y => y == c) / (double)s.Test.Count;
            Assert.InRange(test, whole - 0.01, whole + 0.01);
        }
        var again = DataSplits.Stratified(digits, 0.1, 0.2, seed: 7);
        Assert.Equal(s.Test.Features, again.Test.Features);
    }

    [Fact]
    public void Shuffled_batches_visit_every_example_once_per_epoch()
    {
        var seen = Batches.Shuffled(1000, 64, new Rng(1)).SelectMany(b => b).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, 1000), seen);
        Assert.NotEqual(Enumerable.Range(0, 64), Batches.Shuffled(1000, 64, new Rng(1)).First());
    }
}

/// <summary>Files from ../shared beside the checkout; a missing one fails the test with a loud message.</summary>
internal static class SharedFiles
{
    public static string Require(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", relative);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"SHARED DATA MISSING: '{relative}' was not found in a 'shared' folder beside the checkout (../shared). This test needs it; it does not pass silently.");
    }
}
