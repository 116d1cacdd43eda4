using Xunit;

namespace Coldmind.Tests;

public class RuntimeCliTests
{
    private static string Tiny(TempDir dir, string arch = "bitnet")
    {
        var path = dir.File($"{arch}.gguf");
        var (exit, _, err) = CliProcess.Run("synth", "--arch", arch, "--shape", "tiny", "--out", path);
        Assert.True(exit == 0, err);
        return path;
    }

    [Fact]
    public void Run_prints_one_json_object_with_text_tokens_and_speeds_and_the_same_seed_gives_the_same_text()
    {
        var model = SharedFiles.Require("models/stories260K/stories260K.f32.gguf");
        var (exit, stdout, err) = CliProcess.Run("run", model, "-p", "Once upon a time", "-n", "24", "--seed", "7", "--json");
        Assert.True(exit == 0, err);
        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.Equal(24, root.GetProperty("tokens").GetArrayLength());
        Assert.False(string.IsNullOrWhiteSpace(root.GetProperty("text").GetString()));
        Assert.True(root.GetProperty("prompt_tokens_per_second").GetDouble() > 0);
        Assert.True(root.GetProperty("generation_tokens_per_second").GetDouble() > 0);
        var (_, again, _) = CliProcess.Run("run", model, "-p", "Once upon a time", "-n", "24", "--seed", "7", "--json", "--threads", "1");
        using var json2 = System.Text.Json.JsonDocument.Parse(again);
        Assert.Equal(root.GetProperty("text").GetString(), json2.RootElement.GetProperty("text").GetString());
    }

    [Fact]
    public void Chat_answers_each_line_and_ends_at_an_empty_one()
    {
        var model = SharedFiles.Require("models/stories260K/stories260K.f32.gguf");
        var (exit, stdout, err) = CliProcess.RunWithInput("Tell me a story\nAnother one\n\nnever read\n", "chat", model, "-n", "12", "--temp", "0");
        Assert.True(exit == 0, err);
        Assert.Contains("plain chat format", stdout); // stories260K has no chat template
        Assert.Equal(2, err.Split('\n').Count(l => l.Contains("generation:", StringComparison.Ordinal))); // one answer per line, none after the empty one
    }

    [Fact]
    public void Bench_reports_pp_tg_and_the_roofline()
    {
        using var dir = new TempDir();
        var (exit, stdout, err) = CliProcess.Run("bench", Tiny(dir), "-p", "16", "-n", "8", "-r", "1", "--json");
        Assert.True(exit == 0, err);
        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        foreach (var key in new[] { "pp_tokens_per_second", "tg_tokens_per_second", "bandwidth_gb_per_second", "roofline_tokens_per_second" })
            Assert.True(json.RootElement.GetProperty(key).GetDouble() > 0, key);
    }

    [Fact]
    public void Unknown_architecture_missing_tensor_wrong_shape_and_long_prompt_are_clear_errors()
    {
        using var dir = new TempDir();
        var good = Tiny(dir, "llama");
        using (var source = Formats.GgufFile.Open(good))
        {
            void Rewrite(string path, Func<string, Formats.GgufValue, Formats.GgufValue> meta, Func<Formats.GgufTensorInfo, bool> keep, Func<Formats.GgufTensorInfo, long[]> dims)
            {
                var w = new Formats.GgufWriter();
                foreach (var (k, v) in source.Metadata) w.Set(k, meta(k, v));
                foreach (var t in source.Tensors.Where(keep)) w.AddTensor(t.Name, dims(t), t.Type, source.Data(t).ToArray());
                w.Write(path);
            }
            Rewrite(dir.File("arch.gguf"), (k, v) => k == "general.architecture" ? Formats.GgufValue.Of("gpt9") : v, _ => true, t => t.Dims);
            Rewrite(dir.File("missing.gguf"), (_, v) => v, t => t.Name != "blk.1.ffn_up.weight", t => t.Dims);
            Rewrite(dir.File("shape.gguf"), (_, v) => v, _ => true, t => t.Name == "blk.0.attn_q.weight" ? [t.Dims[0] * 2, t.Dims[1] / 2] : t.Dims);
        }
        foreach (var (file, message) in new[] { ("arch.gguf", "'gpt9'"), ("missing.gguf", "blk.1.ffn_up.weight"), ("shape.gguf", "blk.0.attn_q.weight") })
        {
            var (exit, _, err) = CliProcess.Run("run", dir.File(file), "-p", "hi", "-n", "2");
            Assert.Equal(1, exit);
            Assert.Contains(message, err);
            Assert.DoesNotContain("   at ", err);
        }
        var (code, _, stderr) = CliProcess.Run("run", good, "-p", string.Join(' ', Enumerable.Repeat("word", 50)), "--ctx", "16");
        Assert.Equal(1, code);
        Assert.Contains("does not fit", stderr);
    }
}
