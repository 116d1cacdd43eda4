using Xunit;
namespace Coldmind.Export.Tests;

/// <summary>
/// What the exporter refuses, in one message naming the layer and the way out, and how it writes the folder.
/// </summary>
[Collection("export models")]
public sealed class RefusalTests(ExportModels models)
{
    [Fact]
    public void CnnWithoutFpuIsRefusedNamingTheLayerAndTheOptions()
    {
        var e = Assert.Throws<ColdmindException>(() => CDeployment.Load(models.Path("cnn"), Fpu.None, models.Digits));
        Assert.Contains("Layer 0 is a float 3×3 convolution", e.Message, StringComparison.Ordinal);
        Assert.Contains("--fpu single", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ALayerTheExporterCannotWriteIsNamed()
    {
        var net = new Nn.Sequential([new Nn.Linear(64, 8, new Tensors.Rng(1)),
            new Nn.ActivationLayer(Nn.Activation.Tanh), new Nn.Linear(8, 10, new Tensors.Rng(2))]);
        var e = Assert.Throws<ColdmindException>(
            () => ExportGraph.FromModule(net, [64], "tanh-mlp", new Dictionary<string, string>()));
        Assert.Contains("ActivationLayer", e.Message, StringComparison.Ordinal);
        Assert.Contains("Linear, BitLinear", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheFolderIsReplacedWholeAndNoTemporaryIsLeft()
    {
        string parent = Path.Combine(Path.GetTempPath(), $"coldmind-export-{Guid.NewGuid():N}");
        string dir = Path.Combine(parent, "m");
        Directory.CreateDirectory(dir);
        try
        {
            File.WriteAllText(Path.Combine(dir, "stale.c"), "old");
            CDeployment.Load(models.Path("ternary"), Fpu.Single, models.Digits).Exporter.Write(dir);
            Assert.Equal(["README.md", "example.c", "model.c", "model.h"],
                Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            Assert.Equal([dir], Directory.GetDirectories(parent));
            var exporter = CDeployment.Load(models.Path("ternary"), Fpu.Single, models.Digits).Exporter;
            var missing = Assert.Throws<ColdmindException>(() => exporter.Write(Path.Combine(parent, "no", "m")));
            Assert.Contains("does not exist", missing.Message, StringComparison.Ordinal);
        }
        finally { Directory.Delete(parent, true); }
    }
}
