using System.Buffers.Binary;
using System.Text.Json;
using System.Text;
using Xunit;
using Coldmind.Formats;
using Coldmind.Tensors;

namespace Coldmind.Tests;

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
        Assert.Equal(a.ToArray(), read.Arrays["layer.weight"].Values);
        Assert.Equal(b.ToArray(), read.Arrays["layer.bias"].Values);
        Assert.Equal(a.Transpose().ToArray(), read.Arrays["view"].Values);
        Assert.Equal([5, 3], read.Arrays["view"].Shape);
        Assert.Equal("v", read.Metadata["k"]);
    }

    [Fact]
    public void Reads_the_real_stories260K_checkpoint()
    {
        var path = SharedFiles.Require("models/stories260K/stories260K.safetensors");
        var file = Safetensors.Read(path);
        Assert.NotEmpty(file.Arrays);
        Assert.All(file.Arrays.Values, t => Assert.All(t.Values, v => Assert.True(float.IsFinite(v))));
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
        Assert.Equal(i8.ToArray(), read.Arrays["i8"].Values);
        Assert.Equal(u8.ToArray(), read.Arrays["u8"].Values);
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
