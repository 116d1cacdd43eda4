using System.Text.Json;
using Xunit;
using Coldmind.Models;
using Coldmind.Nn;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class MergeCliTests(DigitsParents parents) : IClassFixture<DigitsParents>
{
    [Fact]
    public void Evolve_writes_a_child_and_a_recipe_that_merge_rebuilds_byte_for_byte()
    {
        string child = parents.File("evolved.safetensors"), recipe = parents.File("evolved.json"), report = parents.File("evolve.html"), rebuilt = parents.File("rebuilt.safetensors");
        var (exit, stdout, err) = CliProcess.Run("evolve", "--parents", $"{parents.A},{parents.B}", "--base", parents.Base, "--space", "both", "--generations", "4",
            "--out", child, "--recipe-out", recipe, "--report", report, "--json");
        Assert.True(exit == 0, err);
        using var json = JsonDocument.Parse(stdout);
        var models = json.RootElement.GetProperty("models").EnumerateArray().ToList();
        Assert.Equal(6, models.Count); // two parents, three hand-set recipes, the child
        double childAccuracy = json.RootElement.GetProperty("child").GetProperty("test_accuracy").GetDouble();
        Assert.True(models.Where(m => m.GetProperty("role").GetString() == "parent").All(m => m.GetProperty("test_accuracy").GetDouble() < childAccuracy));
        Assert.Contains("<svg", File.ReadAllText(report));

        (exit, stdout, err) = CliProcess.Run("merge", recipe, "--out", rebuilt, "--json");
        Assert.True(exit == 0, err);
        Assert.Equal(File.ReadAllBytes(child), File.ReadAllBytes(rebuilt));
    }

    [Fact]
    public void Bad_input_gives_one_message_and_writes_nothing()
    {
        string empty = parents.File("empty.json"), output = parents.File("never.safetensors");
        File.WriteAllText(empty, "");
        var (exit, _, err) = CliProcess.Run("merge", empty, "--out", output);
        Assert.Equal(1, exit);
        Assert.Contains("empty", err);
        (exit, _, err) = CliProcess.Run("evolve", "--parents", parents.A);
        Assert.Equal(1, exit);
        Assert.Contains("at least two", err);
        (exit, _, err) = CliProcess.Run("evolve", "--parents", $"{parents.A},{parents.B}", "--max-joules", "0.001");
        Assert.Equal(1, exit);
        Assert.Contains("need --device", err);
        (exit, _, err) = CliProcess.Run("evolve", "--parents", $"{parents.A},{parents.B}", "--method", "ties");
        Assert.Equal(1, exit);
        Assert.Contains("needs --base", err);
        (exit, _, err) = CliProcess.Run("evolve", "--parents", $"{parents.A},{parents.B}", "--method", "linear", "--ternary", "ternarized");
        Assert.Equal(1, exit);
        Assert.Contains("is a float classifier", err);
        var cnn = ClassifierSpec.ForCnn([1, 8, 8], 10, [4], 16);
        string cnnPath = parents.File("cnn.safetensors");
        TensorFile.Write(cnnPath, cnn.Build(new Rng(0)).NamedParameters(), new Provenance { Spec = cnn }.ToMetadata());
        (exit, _, err) = CliProcess.Run("evolve", "--parents", $"{parents.A},{cnnPath}", "--method", "linear", "--space", "params");
        Assert.Equal(1, exit);
        Assert.Contains("does not match", err);
        Assert.False(File.Exists(output));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(output)!, "*.tmp*"));
    }
}
