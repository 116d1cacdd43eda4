using Coldmind.Export.Onnx;
using Coldmind.Models.Onnx;
using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;
using Xunit;
using Xunit.Abstractions;

namespace Coldmind.Onnx.Tests;

/// <summary>The path the issue promises: PyTorch CNN in, Coldmind shrinks it, ternary student out to ONNX
/// Runtime.</summary>
public class ShrinkFromPytorchTests(ITestOutputHelper output)
{
    [Fact]
    public void Pytorch_cnn_teaches_a_ternary_student_that_onnx_runtime_runs_with_coldminds_predictions()
    {
        var fashion = OrtPeer.Fashion;
        // 6 000 training images keep the test short; the test split is Fashion-MNIST's whole 10 000
        var data = fashion with { Train = fashion.Train.Subset(Enumerable.Range(0, 6000).ToArray()) };
        var teacher = OnnxImporter.Import(OrtPeer.Fixture("fashion_cnn.onnx"), "fashion-mnist");
        var result = ShrinkPipeline.Run(
            data,
            new ShrinkOptions
            {
                Given = (teacher.Build(), teacher.Spec),
                StudentHidden = [64],
                Epochs = 2,
                Rounds = 1,
                PruneRate = 0.5,
                Seed = 1,
                Device = Cost.DeviceProfile.Load("stm32h7"),
            }
        );
        Assert.StartsWith("given", result.Stages[0].Description);
        Assert.Equal(0.8852f, result.Stages[0].TestAccuracy, 3); // the teacher as PyTorch measured it
        var student = result.Final.WithMetadata(
            new Dictionary<string, string>(result.Final.Metadata) { ["coldmind.data"] = "fashion-mnist" }
        );
        Assert.Contains("ternary", student.Describe());

        var onnx = OnnxExporter.Export(student, student.Metadata);
        var coldmind = ClassifierModel.Of(student, "student").Logits(data.Test);
        var (max, off) = OrtPeer.AssertAgree(
            coldmind,
            OrtPeer.RunExported(onnx, data.Test),
            10,
            2e-2f,
            5e-2f,
            "ternary student"
        );
        output.WriteLine(
            $"teacher {result.Stages[0].TestAccuracy:P2}, ternary student {result.Stages[^1].TestAccuracy:P2}; "
                + $"ONNX Runtime on {data.Test.Count} test images: max |Δlogit| {max:G3}, {off} argmax disagreements"
        );
    }
}
