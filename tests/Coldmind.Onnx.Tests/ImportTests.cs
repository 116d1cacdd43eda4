using Coldmind.Data;
using Coldmind.Export.Onnx;
using Coldmind.Models.Onnx;
using Coldmind.Formats.Onnx;
using Coldmind.Nn;
using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;
using Xunit;
using Xunit.Abstractions;

namespace Coldmind.Onnx.Tests;

/// <summary>Models exported by torch.onnx.export (tests/fixtures/onnx/make_fixtures.py), imported and checked against
/// ONNX Runtime.</summary>
public class ImportTests(ITestOutputHelper output)
{
    /// <summary>Fixture, and its test accuracy in PyTorch as make_fixtures.py printed it.</summary>
    public static TheoryData<string, float> Fixtures =>
        new()
        {
            { "fashion_mlp.onnx", 0.8546f },
            { "fashion_mlp_typed.onnx", 0.8546f },
            { "fashion_cnn.onnx", 0.8852f },
        };

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Pytorch_export_imports_and_gives_onnx_runtimes_logits_on_the_fashion_test_split(
        string fixture,
        float torchAccuracy
    )
    {
        var test = OrtPeer.Fashion.Test;
        string path = OrtPeer.Fixture(fixture);
        var imported = OnnxImporter.Import(path, "fashion-mnist");
        var model = ClassifierModel.Of(imported.Build(), imported.Spec, fixture, imported.Metadata);
        var coldmind = model.Logits(test);
        // ONNX Runtime runs PyTorch's graph on raw pixels (0..255); Coldmind its import on its own scaled examples
        var ort = OrtPeer.Run(
            File.ReadAllBytes(path),
            OrtPeer.Raw(test, InputScaling.For("fashion-mnist")),
            [1, 28, 28],
            test.Count
        );
        var (max, off) = OrtPeer.AssertAgree(coldmind, ort, 10, 1e-4f, 1e-3f, fixture);
        int correct = Enumerable
            .Range(0, test.Count)
            .Count(i => Sampler.ArgMax(coldmind.AsSpan(i * 10, 10)) == test.Labels[i]);
        Assert.Equal(torchAccuracy, (float)correct / test.Count, 3);
        Assert.DoesNotContain("affine", imported.Spec.Layers); // PyTorch's x / 255 and Coldmind's scaling cancel
        output.WriteLine(
            $"{fixture}: {imported.Spec.Describe()}; {test.Count} examples, max |Δlogit| {max:G3}, {off} argmax disagreements, accuracy {(float)correct / test.Count:P2}"
        );
    }

    [Fact]
    public void Batchnorm_after_a_linear_layer_is_folded_into_it()
    {
        var imported = OnnxImporter.Import(OrtPeer.Fixture("fashion_cnn.onnx"), "fashion-mnist");
        // torch keeps BatchNorm1d as a node (it folds BatchNorm2d into the convolutions itself)
        Assert.Contains(OnnxFile.Read(OrtPeer.Fixture("fashion_cnn.onnx")).Graph.Nodes, n =>
            n.OpType == "BatchNormalization"
        );
        Assert.Equal(
            "conv 8 3 1 1; relu; maxpool 2 2; conv 16 3 1 1; relu; avgpool 2; flatten; linear 32; sigmoid; linear 10",
            imported.Spec.Layers
        );
    }
}
