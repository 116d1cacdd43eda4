using Xunit;
using Coldmind.Runtime.Lm;

namespace Coldmind.Tests;

public class RuntimeTests
{
    private static readonly SamplerOptions Greedy = new(Temperature: 0, RepeatPenalty: 1);

    [Fact]
    public void Stories260K_greedy_from_bos_reproduces_llama2_c_token_for_token()
    {
        using var model = LanguageModel.Load(SharedFiles.Require("models/stories260K/stories260K.f32.gguf"));
        string expected = File.ReadAllText(SharedFiles.Require("models/stories260K/sample_output_greedy.txt"));
        expected = expected[..expected.IndexOf("achieved tok/s", StringComparison.Ordinal)]; // run.c's speed line follows the text
        var session = model.CreateSession();
        // the sample is run.c's first 200 tokens after BOS, printed without the first one's leading space
        var result = Generator.Generate(session, model.Tokenizer, [model.Tokenizer.BosId], 200, new Sampler(Greedy));
        Assert.Equal(200, result.Tokens.Count);
        Assert.Equal(expected, result.Text[1..]);
    }
}

public class RuntimeLayerTests
{
    /// <summary>Relative L2 distance.</summary>
    private static double Distance(IReadOnlyList<float> a, double[] b)
    {
        double num = 0, den = 0;
        for (int i = 0; i < b.Length; i++) { num += Math.Pow(a[i] - b[i], 2); den += b[i] * b[i]; }
        return Math.Sqrt(num / den);
    }

    [Theory]
    [InlineData("llama", "f32", "f32", 1e-4)]
    [InlineData("bitnet", "f32", "f32", 1e-4)]
    [InlineData("llama", "q8_0", "q6_k", 3e-2)]   // int8 activations (Q8_0 / Q8_K blocks) against float64
    [InlineData("bitnet", "tq2_0", "q6_k", 5e-2)] // repacked ternary: int8 activations per token (absmax over 256+ values)
    [InlineData("bitnet", "tq1_0", "f16", 5e-2)]
    public void Every_layer_and_the_logits_follow_a_float64_reference(string arch, string type, string embed, double tolerance)
    {
        using var dir = new TempDir();
        var path = dir.File("m.gguf");
        var (exit, _, err) = CliTests.Run("synth", "--arch", arch, "--shape", "tiny", "--type", type, "--embed-type", embed, "--seed", "5", "--out", path);
        Assert.True(exit == 0, err);
        using var model = LanguageModel.Load(path);
        using var file = Formats.GgufFile.Open(path);
        var reference = new RuntimeReference(file);
        var session = model.CreateSession(64);
        int[] prompt = [1, 300, 301, 302, 400, 259];
        var layers = new List<float[]>();
        var logits = session.Evaluate(prompt, (_, x) => layers.Add(x)); // the prompt as one batch (GEMM)
        for (int pos = 0; pos < prompt.Length; pos++)
        {
            var (refLayers, refLogits) = reference.Step(prompt[pos], pos);
            for (int l = 0; l < refLayers.Count; l++)
                Assert.InRange(Distance(layers[l].Skip(pos * model.Config.EmbeddingLength).Take(model.Config.EmbeddingLength).ToArray(), refLayers[l]), 0, tolerance);
            if (pos == prompt.Length - 1) Assert.InRange(Distance(logits, refLogits), 0, tolerance);
        }
        // one more token through the single-token (GEMV) path
        var next = session.Evaluate([350]);
        Assert.InRange(Distance(next, reference.Step(350, prompt.Length).Logits), 0, tolerance);
    }
}

public class RuntimeCliTests
{
    private static string Tiny(TempDir dir, string arch = "bitnet")
    {
        var path = dir.File($"{arch}.gguf");
        var (exit, _, err) = CliTests.Run("synth", "--arch", arch, "--shape", "tiny", "--out", path);
        Assert.True(exit == 0, err);
        return path;
    }

    [Fact]
    public void Run_prints_one_json_object_with_text_tokens_and_speeds_and_the_same_seed_gives_the_same_text()
    {
        var model = SharedFiles.Require("models/stories260K/stories260K.f32.gguf");
        var (exit, stdout, err) = CliTests.Run("run", model, "-p", "Once upon a time", "-n", "24", "--seed", "7", "--json");
        Assert.True(exit == 0, err);
        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        var root = json.RootElement;
        Assert.Equal(24, root.GetProperty("tokens").GetArrayLength());
        Assert.False(string.IsNullOrWhiteSpace(root.GetProperty("text").GetString()));
        Assert.True(root.GetProperty("prompt_tokens_per_second").GetDouble() > 0);
        Assert.True(root.GetProperty("generation_tokens_per_second").GetDouble() > 0);
        var (_, again, _) = CliTests.Run("run", model, "-p", "Once upon a time", "-n", "24", "--seed", "7", "--json", "--threads", "1");
        using var json2 = System.Text.Json.JsonDocument.Parse(again);
        Assert.Equal(root.GetProperty("text").GetString(), json2.RootElement.GetProperty("text").GetString());
    }

    [Fact]
    public void Chat_answers_each_line_and_ends_at_an_empty_one()
    {
        var model = SharedFiles.Require("models/stories260K/stories260K.f32.gguf");
        var (exit, stdout, err) = CliTests.RunWithInput("Tell me a story\nAnother one\n\nnever read\n", "chat", model, "-n", "12", "--temp", "0");
        Assert.True(exit == 0, err);
        Assert.Contains("plain chat format", stdout); // stories260K has no chat template
        Assert.Equal(2, err.Split('\n').Count(l => l.Contains("generation:", StringComparison.Ordinal))); // one answer per line, none after the empty one
    }

    [Fact]
    public void Bench_reports_pp_tg_and_the_roofline()
    {
        using var dir = new TempDir();
        var (exit, stdout, err) = CliTests.Run("bench", Tiny(dir), "-p", "16", "-n", "8", "-r", "1", "--json");
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
            var (exit, _, err) = CliTests.Run("run", dir.File(file), "-p", "hi", "-n", "2");
            Assert.Equal(1, exit);
            Assert.Contains(message, err);
            Assert.DoesNotContain("   at ", err);
        }
        var (code, _, stderr) = CliTests.Run("run", good, "-p", string.Join(' ', Enumerable.Repeat("word", 50)), "--ctx", "16");
        Assert.Equal(1, code);
        Assert.Contains("does not fit", stderr);
    }
}
