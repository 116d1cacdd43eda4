using Xunit;
using Coldmind.Formats;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class GgufTests
{
    [Fact]
    public void Reads_the_real_stories260K_model_and_agrees_with_its_safetensors_copy()
    {
        using var gguf = GgufFile.Open(SharedFiles.Require("models/stories260K/stories260K.f32.gguf"));
        Assert.Equal(3u, gguf.Version);
        Assert.Equal("llama", gguf.Get("general.architecture")!.Value);
        Assert.Equal(64, gguf.Get("llama.embedding_length")!.AsInteger());
        var embedding = gguf.Tensor("token_embd.weight");
        Assert.Equal([64L, 512L], embedding.Dims);
        Assert.Equal(GgmlType.F32, embedding.Type);
        var safetensors = Safetensors.Read(SharedFiles.Require("models/stories260K/stories260K.safetensors"));
        Assert.Equal(safetensors.Arrays["tok_embeddings.weight"].Values, gguf.ReadFloats(embedding));
    }

    [Fact]
    public void Reads_a_real_tokenizer_vocabulary()
    {
        using var gguf = GgufFile.Open(SharedFiles.Require("data/tokenizer-vectors/ggml-vocab-llama-spm.gguf"));
        Assert.Equal("llama", gguf.Get("tokenizer.ggml.model")!.Value);
        var tokens = gguf.Get("tokenizer.ggml.tokens")!;
        Assert.Equal(GgufValueType.String, tokens.ElementType);
        Assert.Equal(32000, ((string[])tokens.Value).Length);
        Assert.Equal(32000, ((float[])gguf.Get("tokenizer.ggml.scores")!.Value).Length);
    }

    [Fact]
    public void Round_trips_every_value_type_and_tensor_type()
    {
        using var dir = new TempDir();
        var path = dir.File("all.gguf");
        var rng = new Rng(1);
        var w = new GgufWriter()
            .Set("general.alignment", GgufValue.Of(64u))
            .Set("u8", new GgufValue(GgufValueType.UInt8, (byte)200)).Set("i8", new GgufValue(GgufValueType.Int8, (sbyte)-5))
            .Set("u16", new GgufValue(GgufValueType.UInt16, (ushort)60000)).Set("i16", new GgufValue(GgufValueType.Int16, (short)-300))
            .Set("u32", GgufValue.Of(4000000000u)).Set("i32", GgufValue.Of(-7)).Set("f32", GgufValue.Of(1.5f))
            .Set("bool", GgufValue.Of(true)).Set("str", GgufValue.Of("héllo, GGUF"))
            .Set("u64", GgufValue.Of(ulong.MaxValue)).Set("i64", new GgufValue(GgufValueType.Int64, long.MinValue))
            .Set("f64", new GgufValue(GgufValueType.Float64, Math.PI))
            .Set("strings", GgufValue.Array(GgufValueType.String, new[] { "a", "", "ünïcode" }))
            .Set("floats", GgufValue.Array(GgufValueType.Float32, new[] { 1f, -2f, float.MaxValue }))
            .Set("empty", GgufValue.Array(GgufValueType.Int32, Array.Empty<int>()));
        var originals = new Dictionary<string, float[]>();
        foreach (var traits in GgmlTypes.Supported)
        {
            var x = Tensor.Normal(rng, 0.1f, 256 * 3).ToArray();
            originals[traits.Name] = traits.Dequantize(traits.Quantize(x), x.Length);
            w.AddTensor("t." + traits.Name, [256, 3], traits.Type, traits.Quantize(x));
        }
        w.Write(path);

        using var f = GgufFile.Open(path);
        Assert.Equal(64, f.Alignment);
        Assert.Equal(0, f.DataOffset % 64);
        Assert.Equal((byte)200, f.Get("u8")!.Value);
        Assert.Equal((sbyte)-5, f.Get("i8")!.Value);
        Assert.Equal((ushort)60000, f.Get("u16")!.Value);
        Assert.Equal((short)-300, f.Get("i16")!.Value);
        Assert.Equal(4000000000u, f.Get("u32")!.Value);
        Assert.Equal(-7, f.Get("i32")!.Value);
        Assert.Equal(1.5f, f.Get("f32")!.Value);
        Assert.Equal(true, f.Get("bool")!.Value);
        Assert.Equal("héllo, GGUF", f.Get("str")!.Value);
        Assert.Equal(ulong.MaxValue, f.Get("u64")!.Value);
        Assert.Equal(long.MinValue, f.Get("i64")!.Value);
        Assert.Equal(Math.PI, f.Get("f64")!.Value);
        Assert.Equal(new[] { "a", "", "ünïcode" }, f.Get("strings")!.Value);
        Assert.Equal(new[] { 1f, -2f, float.MaxValue }, f.Get("floats")!.Value);
        Assert.Empty((int[])f.Get("empty")!.Value);
        foreach (var traits in GgmlTypes.Supported)
        {
            var t = f.Tensor("t." + traits.Name);
            Assert.Equal(0, t.Offset % 64);
            Assert.Equal(originals[traits.Name], f.ReadFloats(t));
        }
    }

    [Fact]
    public void Wrong_magic_version_and_offsets_are_clear_errors()
    {
        using var dir = new TempDir();
        var path = dir.File("x.gguf");
        new GgufWriter().Set("k", GgufValue.Of(1u)).AddTensor("w", [32], GgmlType.F32, new byte[128]).Write(path);
        var good = File.ReadAllBytes(path);

        var bad = (byte[])good.Clone(); bad[0] = (byte)'X';
        File.WriteAllBytes(path, bad);
        Assert.Contains("wrong magic", Assert.Throws<ColdmindException>(() => GgufFile.Open(path)).Message);
        bad = (byte[])good.Clone(); bad[4] = 1;
        File.WriteAllBytes(path, bad);
        Assert.Contains("version 1", Assert.Throws<ColdmindException>(() => GgufFile.Open(path)).Message);
        File.WriteAllBytes(path, good[..^64]);
        Assert.Contains("truncated", Assert.Throws<ColdmindException>(() => GgufFile.Open(path)).Message);
        Assert.Contains("File not found", Assert.Throws<ColdmindException>(() => GgufFile.Open(dir.File("none.gguf"))).Message);
    }

    [Theory]
    [InlineData(0L, 1L << 61)]               // 2^61 F32 values: 2^63 bytes, which overflows a long
    [InlineData(long.MaxValue - 31, 32L)]    // an aligned offset so large that offset + data start overflows
    public void Sizes_and_offsets_that_overflow_are_refused(long offset, long dim)
    {
        using var dir = new TempDir();
        var path = dir.File("o.gguf");
        new GgufWriter().AddTensor("w", [32], GgmlType.F32, new byte[128]).Write(path);
        var bytes = File.ReadAllBytes(path);
        // Tensor info of "w": name length (8), "w", n_dims (4), dims[0] (8), type (4), offset (8).
        int at = bytes.AsSpan().IndexOf("\u0001\0\0\0\0\0\0\0w"u8) + 9;
        BitConverter.TryWriteBytes(bytes.AsSpan(at + 4), dim);
        BitConverter.TryWriteBytes(bytes.AsSpan(at + 16), offset);
        File.WriteAllBytes(path, bytes);
        Assert.Throws<ColdmindException>(() => GgufFile.Open(path));
    }

    [Fact]
    public void Fuzzed_files_never_crash_the_reader()
    {
        using var dir = new TempDir();
        var path = dir.File("seed.gguf");
        var rng = new Rng(2024);
        new GgufWriter()
            .Set("general.architecture", GgufValue.Of("llama"))
            .Set("tokenizer.ggml.tokens", GgufValue.Array(GgufValueType.String, new[] { "<s>", "</s>", "hello" }))
            .Set("scores", GgufValue.Array(GgufValueType.Float32, new[] { 0f, 1f, 2f }))
            .AddTensor("a", [32, 2], GgmlType.Q8_0, GgmlTypes.Traits(GgmlType.Q8_0).Quantize(Tensor.Normal(rng, 1f, 64).ToArray()))
            .AddTensor("b", [256], GgmlType.TQ2_0, GgmlTypes.Traits(GgmlType.TQ2_0).Quantize(Tensor.Normal(rng, 1f, 256).ToArray()))
            .Write(path);
        var seed = File.ReadAllBytes(path);
        int parsed = 0, refused = 0;
        var mutant = dir.File("mutant.gguf");
        foreach (var bytes in Fuzzing.Mutants(seed, rng, 3000))
        {
            File.WriteAllBytes(mutant, bytes);
            try
            {
                using var g = GgufFile.Open(mutant);
                foreach (var t in g.Tensors) g.ReadFloats(t);
                parsed++;
            }
            catch (ColdmindException) { refused++; }
        }
        Assert.Equal(3000, parsed + refused);
        Assert.True(refused > 1000, $"only {refused} of 3000 mutants were refused");
    }
}
