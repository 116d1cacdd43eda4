using System.Text.Json;
using Xunit;
using Coldmind.Formats;
using Coldmind.Quantization;

namespace Coldmind.Tests;

public class QuantizeCliTests
{
    [Fact]
    public void Quantize_packs_matrices_keeps_1d_and_ragged_tensors_and_reports_errors()
    {
        using var dir = new TempDir();
        var source = SharedFiles.Require("models/stories260K/stories260K.f32.gguf");
        var output = dir.File("q8.gguf");
        var (exit, stdout, stderr) = CliProcess.Run("quantize", source, "--type", "q8_0", "--out", output, "--json");
        Assert.True(exit == 0, stderr);
        using var report = JsonDocument.Parse(stdout);
        Assert.True(report.RootElement.GetProperty("bytes_after").GetInt64() < report.RootElement.GetProperty("bytes_before").GetInt64() / 2);

        using var original = GgufFile.Open(source);
        using var packed = GgufFile.Open(output);
        Assert.Equal(7, packed.Get("general.file_type")!.AsInteger()); // LLAMA_FTYPE_MOSTLY_Q8_0
        Assert.Equal("llama", packed.Get("general.architecture")!.Value);
        Assert.Equal(original.Tensors.Count, packed.Tensors.Count);
        Assert.Equal(GgmlType.Q8_0, packed.Tensor("blk.0.attn_q.weight").Type);
        Assert.Equal(GgmlType.F32, packed.Tensor("blk.0.attn_norm.weight").Type);   // 1-D: kept
        Assert.Equal(GgmlType.F32, packed.Tensor("blk.0.ffn_down.weight").Type);    // rows of 172: not whole blocks of 32
        var before = original.ReadFloats(original.Tensor("blk.0.attn_q.weight"));
        var after = packed.ReadFloats(packed.Tensor("blk.0.attn_q.weight"));
        Assert.InRange(QuantizationError.NormalizedRmse(before, after), 1e-4, 0.01);
        foreach (var t in report.RootElement.GetProperty("tensors").EnumerateArray())
            Assert.InRange(t.GetProperty("normalized_rmse").GetDouble(), 0, 0.01);
    }

    [Fact]
    public void Inspect_describes_gguf_and_safetensors_files()
    {
        var (exit, stdout, stderr) = CliProcess.Run("inspect", SharedFiles.Require("models/stories260K/stories260K.f32.gguf"), "--json");
        Assert.True(exit == 0, stderr);
        using var gguf = JsonDocument.Parse(stdout);
        Assert.Equal(47, gguf.RootElement.GetProperty("tensors").GetArrayLength());
        Assert.Equal(32.0, gguf.RootElement.GetProperty("bits_per_weight").GetDouble());
        Assert.Equal("llama", gguf.RootElement.GetProperty("metadata").GetProperty("general.architecture").GetString());

        (exit, stdout, stderr) = CliProcess.Run("inspect", SharedFiles.Require("models/stories260K/stories260K.safetensors"), "--json");
        Assert.True(exit == 0, stderr);
        using var st = JsonDocument.Parse(stdout);
        Assert.Equal(47, st.RootElement.GetProperty("tensors").GetArrayLength()); // the same 47 tensors as the GGUF

        (exit, stdout, stderr) = CliProcess.Run("inspect", SharedFiles.Require("models/stories260K/stories260K.f32.gguf"));
        Assert.True(exit == 0, stderr);
        Assert.Contains("[64, 512]", stdout); // shapes in brackets are text, not markup
    }

    [Theory]
    [InlineData("auto", GgmlType.Q6_K)]
    [InlineData("q4_0", GgmlType.Q4_0)]
    public void Embeddings_and_output_head_get_q6_k_below_its_precision_as_llama_cpp_does(string headType, GgmlType expected)
    {
        using var dir = new TempDir();
        var source = dir.File("f32.gguf");
        var f32 = GgmlTypes.Traits(GgmlType.F32);
        var rng = new Coldmind.Tensors.Rng(4);
        new GgufWriter()
            .AddTensor("token_embd.weight", [256, 4], GgmlType.F32, f32.Quantize(Coldmind.Tensors.Tensor.Normal(rng, 1f, 1024).ToArray()))
            .AddTensor("blk.0.attn_q.weight", [256, 4], GgmlType.F32, f32.Quantize(Coldmind.Tensors.Tensor.Normal(rng, 1f, 1024).ToArray()))
            .Write(source);
        var output = dir.File("q4.gguf");
        var (exit, _, stderr) = CliProcess.Run("quantize", source, "--type", "q4_0", "--head-type", headType, "--out", output, "--json");
        Assert.True(exit == 0, stderr);
        using var packed = GgufFile.Open(output);
        Assert.Equal(expected, packed.Tensor("token_embd.weight").Type);
        Assert.Equal(GgmlType.Q4_0, packed.Tensor("blk.0.attn_q.weight").Type);
    }

    [Theory]
    [InlineData("Unknown tensor type 'q3'", "--type", "q3", "--out", "x.gguf")]
    [InlineData("--out must name a .gguf file", "--type", "q8_0", "--out", "x.bin")]
    public void Bad_quantize_arguments_are_clear_errors(string expected, params string[] args)
    {
        var (exit, _, stderr) = CliProcess.Run(["quantize", SharedFiles.Require("models/stories260K/stories260K.f32.gguf"), .. args]);
        Assert.Equal(1, exit);
        Assert.Contains(expected, stderr);
    }

    [Fact]
    public void Every_ggml_type_id_has_traits()
    {
        foreach (var type in Enum.GetValues<GgmlType>())
        {
            var traits = GgmlTypes.Traits(type);
            Assert.Equal(type, traits.Type);
            Assert.True(traits.BlockSize > 0 && traits.BytesPerBlock > 0);
        }
    }
}
