using Xunit;
using Coldmind.Runtime.Lm;

namespace Coldmind.Tests;

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
        var (exit, _, err) = CliProcess.Run("synth", "--arch", arch, "--shape", "tiny", "--type", type, "--embed-type", embed, "--seed", "5", "--out", path);
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
