using Coldmind.Export.Onnx;
using Coldmind.Models.Onnx;
using Coldmind.Formats.Onnx;
using Coldmind.Nn;
using Coldmind.Quantization;
using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;
using Xunit;
using Xunit.Abstractions;

namespace Coldmind.Onnx.Tests;

/// <summary>Every kind of exported classifier, run by ONNX Runtime on the whole test split against Coldmind's own
/// run.</summary>
public class ExportTests(ITestOutputHelper output)
{
    private static readonly ClassifierSpec MlpSpec = ClassifierSpec.ForMlp([1, 8, 8], 10, [32]);
    private static readonly ClassifierSpec CnnSpec = ClassifierSpec.ForCnn([1, 8, 8], 10, [4, 8], 16);

    [Fact]
    public void Float_mlp_and_cnn_agree_with_onnx_runtime_and_carry_scaling_and_temperature()
    {
        var data = OrtPeer.Digits;
        foreach (var spec in new[] { MlpSpec, CnnSpec })
        {
            var model = Trained.Fit(spec, data, epochs: 3);
            var meta = Trained.Metadata(spec, "digits", temperature: 1.7f);
            var onnx = OnnxExporter.Export(model, spec, meta);
            var coldmind = ClassifierModel.Of(model, spec, "float", meta).Logits(data.Test);
            var (max, off) = OrtPeer.AssertAgree(
                coldmind,
                OrtPeer.RunExported(onnx, data.Test),
                10,
                1e-4f,
                1e-3f,
                spec.Describe()
            );
            OrtPeer.AssertAgree(
                coldmind,
                OrtPeer.RunExported(onnx, data.Test, mode: OrtMode.Unoptimized),
                10,
                1e-4f,
                1e-3f,
                spec.Describe() + " unoptimized"
            );
            // probabilities as `predict` calibrates them: Softmax(logits / T) in the graph
            var expected = Calibration.Probabilities(coldmind, 10, 1.7f);
            var probabilities = OrtPeer.RunExported(onnx, data.Test, "probabilities");
            for (int i = 0; i < expected.Length; i++)
                Assert.True(MathF.Abs(expected[i] - probabilities[i]) < 1e-5f, $"probability {i}");
            Assert.Equal(["Div"], onnx.Graph.Nodes.Take(1).Select(n => n.OpType)); // pixels / 16 first
            output.WriteLine(
                $"{spec.Describe()}: {data.Test.Count} examples, max |Δlogit| {max:G3}, {off} argmax disagreements"
            );
        }
    }

    [Theory]
    [InlineData("int8/g32")]
    [InlineData("int8/tensor")]
    [InlineData("int4/g32")]
    [InlineData("int4/tensor")]
    [InlineData("ternary/g32")]
    public void Post_training_quantized_mlp_exports_as_qdq_and_agrees_with_onnx_runtime(string schemeName)
    {
        var data = OrtPeer.Digits;
        var scheme = PtqScheme.Parse(schemeName);
        var compact = CompactClassifier.Compile(
            Trained.Fit(MlpSpec, data, epochs: 3),
            Trained.Metadata(MlpSpec, "digits"),
            [scheme, scheme]
        );
        var onnx = OnnxExporter.Export(compact, compact.Metadata);
        var dq = onnx.Graph.Nodes.Where(n => n.OpType == "DequantizeLinear").ToArray();
        Assert.Equal(2, dq.Length);
        var codes = onnx.Graph.Initializers.Where(t => dq.Any(n => n.Inputs[0] == t.Name)).ToArray();
        Assert.All(codes, t =>
            Assert.Equal(scheme.Method == PtqMethod.Int4 ? OnnxDataType.Int4 : OnnxDataType.Int8, t.DataType)
        );
        Assert.All(dq, n => Assert.Equal(scheme.GroupSize, n.Int("block_size", 0)));
        var coldmind = ClassifierModel.Of(compact, schemeName).Logits(data.Test);
        // the graph's own arithmetic is Coldmind's, unoptimized and fused into MatMulNBits computing in float
        var (max, off) = OrtPeer.AssertAgree(
            coldmind,
            OrtPeer.RunExported(onnx, data.Test, mode: OrtMode.Unoptimized),
            10,
            1e-4f,
            1e-3f,
            schemeName
        );
        var (fp32Max, fp32Off) = OrtPeer.AssertAgree(
            coldmind,
            OrtPeer.RunExported(onnx, data.Test, mode: OrtMode.Fp32),
            10,
            1e-4f,
            1e-3f,
            schemeName + " fp32"
        );
        // as ONNX Runtime ships it, MatMulNBits (accuracy level 4) also rounds the activations to int8: not Coldmind's
        // arithmetic, so only near-ties may flip (and may be more than 0.1 % of a small split)
        var shipped = OrtPeer.RunExported(onnx, data.Test);
        int flips = OrtPeer.Disagreements(coldmind, shipped, 10, tie: 0.1f, schemeName + " as shipped");
        output.WriteLine(
            $"{schemeName}: max |Δlogit| {max:G3} unoptimized, {fp32Max:G3} fused in fp32 ({off + fp32Off} argmax disagreements); "
                + $"as shipped (int8 activations) {flips} near-tie disagreements, of {data.Test.Count}"
        );
    }

    [Theory]
    [InlineData("int8/g32")]
    [InlineData("int4/tensor")]
    public void Post_training_quantized_cnn_exports_conv_and_gemm_weights_as_qdq_and_agrees_with_onnx_runtime(
        string schemeName
    )
    {
        // as `ptq --save` writes it: every weight matrix rounded by the scheme (rows = output channels), in float
        var data = OrtPeer.Digits;
        var scheme = PtqScheme.Parse(schemeName);
        var cnn = Trained.Fit(CnnSpec, data, epochs: 2);
        var state = cnn.NamedParameters()
            .ToDictionary(
                p => p.Name,
                p =>
                    p.Tensor.Rank >= 2
                        ? Tensors.Tensor.FromArray(
                            scheme.Apply(p.Tensor.ToArray(), p.Tensor.Numel / p.Tensor.Shape[0]),
                            p.Tensor.Shape
                        )
                        : p.Tensor
            );
        var quantized = CnnSpec.Build(new Tensors.Rng(0));
        quantized.LoadState(state);
        var meta = new Dictionary<string, string>(Trained.Metadata(CnnSpec, "digits"))
        {
            ["coldmind.ptq"] = schemeName,
        };
        var onnx = OnnxExporter.Export(quantized, CnnSpec, meta);
        Assert.Equal(4, onnx.Graph.Nodes.Count(n => n.OpType == "DequantizeLinear"));
        var coldmind = ClassifierModel.Of(quantized, CnnSpec, schemeName, meta).Logits(data.Test);
        var (max, off) = OrtPeer.AssertAgree(
            coldmind,
            OrtPeer.RunExported(onnx, data.Test, mode: OrtMode.Unoptimized),
            10,
            1e-4f,
            1e-3f,
            schemeName
        );
        OrtPeer.AssertAgree(
            coldmind,
            OrtPeer.RunExported(onnx, data.Test),
            10,
            1e-4f,
            1e-3f,
            schemeName + " optimized"
        );
        output.WriteLine($"{schemeName} CNN: max |Δlogit| {max:G3}, {off} argmax disagreements of {data.Test.Count}");
    }

    [Fact]
    public void Ternary_bitlinear_mlp_exports_as_qdq_with_int8_activations_and_agrees_with_onnx_runtime()
    {
        var data = OrtPeer.Digits;
        var spec = ClassifierSpec.ForMlp([1, 8, 8], 10, [64, 32], ternary: true);
        var compact = CompactClassifier.Compile(Trained.Fit(spec, data, epochs: 4), Trained.Metadata(spec, "digits"));
        Assert.Contains("ternary", compact.Describe());
        var onnx = OnnxExporter.Export(compact, compact.Metadata);
        Assert.Equal(2, onnx.Graph.Nodes.Count(n => n.OpType == "QuantizeLinear"));
        var coldmind = ClassifierModel.Of(compact, "ternary").Logits(data.Test);
        // the int8 activation codes may differ where h / step lands on a half: Coldmind rounds it away from zero,
        // QuantizeLinear to even; one code step moves a logit by at most scale · step · (row's trits)
        var (max, off) = OrtPeer.AssertAgree(
            coldmind,
            OrtPeer.RunExported(onnx, data.Test, mode: OrtMode.Unoptimized),
            10,
            2e-2f,
            5e-2f,
            "ternary"
        );
        var (fusedMax, fusedOff) = OrtPeer.AssertAgree(
            coldmind,
            OrtPeer.RunExported(onnx, data.Test),
            10,
            2e-2f,
            5e-2f,
            "ternary fused"
        );
        output.WriteLine(
            $"ternary BitLinear MLP: max |Δlogit| {max:G3} ({fusedMax:G3} optimized), {off} ({fusedOff}) argmax disagreements of {data.Test.Count}"
        );
    }

    [Fact]
    public void Round_trip_coldmind_onnx_coldmind_gives_the_same_predictions()
    {
        var data = OrtPeer.Digits;
        using var dir = new TempDir();
        var mlp = Trained.Fit(MlpSpec, data, epochs: 3);
        var int8 = CompactClassifier.Compile(
            mlp,
            Trained.Metadata(MlpSpec, "digits"),
            [PtqScheme.Parse("int8/g32"), PtqScheme.Parse("int8/g32")]
        );
        var cnn = Trained.Fit(CnnSpec, data, epochs: 2);
        var ternarySpec = ClassifierSpec.ForMlp([1, 8, 8], 10, [32], ternary: true);
        var ternary = CompactClassifier.Compile(
            Trained.Fit(ternarySpec, data, epochs: 3),
            Trained.Metadata(ternarySpec, "digits")
        );
        var cases = new (string Name, ClassifierModel Model, OnnxModel Onnx)[]
        {
            ("ternary mlp", ClassifierModel.Of(ternary, "ternary"), OnnxExporter.Export(ternary, ternary.Metadata)),
            (
                "float mlp",
                ClassifierModel.Of(mlp, MlpSpec, "mlp", Trained.Metadata(MlpSpec, "digits")),
                OnnxExporter.Export(mlp, MlpSpec, Trained.Metadata(MlpSpec, "digits"))
            ),
            ("int8 mlp", ClassifierModel.Of(int8, "int8"), OnnxExporter.Export(int8, int8.Metadata)),
            (
                "float cnn",
                ClassifierModel.Of(cnn, CnnSpec, "cnn", Trained.Metadata(CnnSpec, "digits")),
                OnnxExporter.Export(cnn, CnnSpec, Trained.Metadata(CnnSpec, "digits"))
            ),
        };
        foreach (var (name, model, onnx) in cases)
        {
            string path = dir.File(name.Replace(' ', '_') + ".onnx");
            OnnxFile.Write(path, onnx);
            var imported = OnnxImporter.Import(path);
            Assert.Equal("digits", imported.Metadata["coldmind.data"]);
            Assert.Equal(
                1.5f,
                float.Parse(
                    imported.Metadata["coldmind.temperature"],
                    System.Globalization.CultureInfo.InvariantCulture
                )
            );
            Assert.DoesNotContain("affine", imported.Spec.Layers); // the scaling and its inverse cancel
            var again = ClassifierModel.Of(imported.Build(), imported.Spec, name, imported.Metadata).Logits(data.Test);
            // the ternary layer comes back as a BitLinear module: the same trits, scale, norm and int8 activations,
            // computed by the tensor engine instead of the compact kernel
            bool bitLinear = name.StartsWith("ternary", StringComparison.Ordinal);
            Assert.Equal(bitLinear, imported.Spec.Layers.Contains("bitlinear", StringComparison.Ordinal));
            var (max, off) = OrtPeer.AssertAgree(
                model.Logits(data.Test),
                again,
                10,
                bitLinear ? 1e-3f : 1e-5f,
                1e-4f,
                name
            );
            Assert.Equal(0, off);
            // and out again: the imported stack (its BitLinear, its folded int8 weights) exported, run by ONNX Runtime
            var twice = OnnxExporter.Export(imported.Build(), imported.Spec, imported.Metadata);
            var (maxTwice, _) = OrtPeer.AssertAgree(
                model.Logits(data.Test),
                OrtPeer.RunExported(twice, data.Test),
                10,
                bitLinear ? 2e-2f : 1e-4f,
                5e-2f,
                name + " twice"
            );
            output.WriteLine(
                $"{name} → ONNX → Coldmind: max |Δlogit| {max:G3}; → ONNX again, in ONNX Runtime: {maxTwice:G3}"
            );
        }
    }
}
