using System.Text.Json;
using Xunit;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class PtqTests
{
    private static float[] Gaussian(int n, ulong seed) => Tensor.Normal(new Rng(seed), 1f, n).ToArray();

    [Fact]
    public void Int4_and_int8_in_groups_of_32_round_as_q4_0_and_q8_0_do()
    {
        var w = Gaussian(32 * 64, 1);
        foreach (var (scheme, type) in new[] { ("int4/g32", GgmlType.Q4_0), ("int8/g32", GgmlType.Q8_0) })
        {
            var ours = PtqScheme.Parse(scheme).Apply(w, 256);
            var traits = GgmlTypes.Traits(type);
            var ggml = traits.Dequantize(traits.Quantize(w), w.Length);
            // the same codes; ggml keeps the scale in f16, so values differ by its rounding (≤ 2⁻¹¹ relative)
            for (int i = 0; i < w.Length; i++) Assert.True(Math.Abs(ours[i] - ggml[i]) <= 1e-3 * Math.Abs(ggml[i]) + 1e-7, $"{scheme} [{i}]: {ours[i]} vs {ggml[i]}");
        }
    }

    [Fact]
    public void Fewer_bits_cost_more_error_and_groups_cost_less()
    {
        var w = Gaussian(128 * 256, 2);
        double Error(string s) => QuantizationError.NormalizedRmse(w, PtqScheme.Parse(s).Apply(w, 256));
        Assert.True(Error("int8/g32") < Error("int4/g32"));
        Assert.True(Error("int4/g32") < Error("int2/g32"));
        Assert.True(Error("int2/g32") < Error("binary/g32"));
        Assert.True(Error("int4/g32") < Error("int4/tensor"));
        Assert.True(Error("int2/g32") < Error("int2/tensor"));
        // on a Gaussian, a 1-bit sign code with the optimal scale keeps √(1 − 2/π) ≈ 0.603 of the signal as error
        Assert.InRange(Error("binary/tensor"), 0.59, 0.62);
    }

    [Fact]
    public void Ternary_and_binary_take_their_scale_from_mean_magnitude_per_group_within_rows()
    {
        float[] w = [0.9f, -0.1f, -0.5f, 0.2f, /* row 2 */ 4f, -4f, 0f, 0f];
        var t = PtqScheme.Parse("ternary/g4").Apply(w, 4);
        Close([0.425f, 0, -0.425f, 0, 2f, -2f, 0, 0], t); // mean|x| 0.425 and 2; x/mean rounded and clamped to ±1
        var b = PtqScheme.Parse("binary/g2").Apply(w, 4);
        Close([0.5f, -0.5f, -0.35f, 0.35f, 4f, -4f, 0f, 0f], b);
        var ragged = PtqScheme.Parse("binary/g3").Apply(w, 4); // groups of 3 and 1 in each row
        Assert.Equal(0.2f, ragged[3], 1e-6f);
        Assert.Equal(0f, ragged[7]);
    }

    private static void Close(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 1e-6f);
    }

    [Theory]
    [InlineData("int3/g32")] [InlineData("int4")] [InlineData("int4/g0")] [InlineData("int4/row")] [InlineData("ternary/g-2")]
    public void Bad_schemes_are_refused_with_the_grammar(string text) =>
        Assert.Contains("/", Assert.Throws<ColdmindException>(() => PtqScheme.Parse(text)).Message);

    [Fact]
    public void Ptq_command_reports_each_layer_and_keeps_accuracy_at_8_bits()
    {
        using var dir = new TempDir();
        var model = dir.File("m.safetensors");
        var (exit, _, stderr) = CliProcess.Run("train", "--epochs", "8", "--hidden", "64", "--out", model, "--json");
        Assert.True(exit == 0, stderr);
        string stdout;
        (exit, stdout, stderr) = CliProcess.Run("ptq", model, "--schemes", "int8/g32,int2/tensor,binary/tensor", "--json");
        Assert.True(exit == 0, stderr);
        using var report = JsonDocument.Parse(stdout);
        float baseline = report.RootElement.GetProperty("float_accuracy").GetSingle();
        var schemes = report.RootElement.GetProperty("schemes").EnumerateArray().ToArray();
        Assert.Equal(["int8/g32", "int2/tensor", "binary/tensor"], schemes.Select(s => s.GetProperty("scheme").GetString()));
        Assert.InRange(schemes[0].GetProperty("test_accuracy").GetSingle(), baseline - 0.01f, 1f);
        Assert.All(schemes, s => Assert.Equal(2, s.GetProperty("layers").GetArrayLength()));
        Assert.True(schemes[2].GetProperty("bytes").GetInt64() < schemes[0].GetProperty("bytes").GetInt64() / 4);

        var saved = dir.File("int8.safetensors");
        (exit, _, stderr) = CliProcess.Run("ptq", model, "--schemes", "int8/g32", "--save", saved, "--json");
        Assert.True(exit == 0, stderr);
        (exit, stdout, stderr) = CliProcess.Run("eval", saved, "--json");
        Assert.True(exit == 0, stderr);
        using var eval = JsonDocument.Parse(stdout);
        Assert.Equal(schemes[0].GetProperty("test_accuracy").GetSingle(), eval.RootElement.GetProperty("test_accuracy").GetSingle());

        (exit, _, stderr) = CliProcess.Run("ptq", model, "--schemes", "int8/g32,int4/g32", "--save", saved);
        Assert.Equal(1, exit);
        Assert.Contains("one quantized model", stderr);
    }
}
