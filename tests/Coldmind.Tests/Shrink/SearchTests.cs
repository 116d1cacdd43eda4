using System.Text.Json;
using Xunit;
using Coldmind.Runtime.Classifier;

namespace Coldmind.Tests;

public class SearchTests
{
    [Fact]
    public void Search_returns_a_front_and_a_model_within_budget_or_says_how_close_it_came()
    {
        using var dir = new TempDir();
        string output = dir.File("chosen.safetensors");
        var (exit, stdout, err) = CliProcess.Run("search", "--epochs", "10", "--generations", "5", "--population", "12", "--max-bytes", "6000", "--out", output, "--json");
        Assert.True(exit == 0, err);
        using var json = JsonDocument.Parse(stdout);
        var front = json.RootElement.GetProperty("front").EnumerateArray().ToArray();
        Assert.NotEmpty(front);
        // no front member is dominated by another (accuracy up, bytes and joules down; one strictly, so none dominates itself)
        foreach (var a in front)
            Assert.DoesNotContain(front, b => b.GetProperty("validation_accuracy").GetDouble() >= a.GetProperty("validation_accuracy").GetDouble()
                && b.GetProperty("bytes").GetInt64() <= a.GetProperty("bytes").GetInt64()
                && b.GetProperty("joules_per_inference").GetDouble() <= a.GetProperty("joules_per_inference").GetDouble()
                && (b.GetProperty("validation_accuracy").GetDouble() > a.GetProperty("validation_accuracy").GetDouble()
                    || b.GetProperty("bytes").GetInt64() < a.GetProperty("bytes").GetInt64()
                    || b.GetProperty("joules_per_inference").GetDouble() < a.GetProperty("joules_per_inference").GetDouble()));
        var chosen = json.RootElement.GetProperty("chosen");
        Assert.InRange(chosen.GetProperty("bytes").GetInt64(), 1, 6000);
        Assert.True(chosen.GetProperty("test_accuracy").GetDouble() > 0.8);
        // the chosen model, fine-tuned with its masks held, is written in the form it was priced in and runs in predict
        Assert.InRange(chosen.GetProperty("finetuned_bytes").GetInt64(), 1, 6000);
        Assert.True(chosen.GetProperty("finetuned_test_accuracy").GetDouble() > 0.8);
        Assert.Contains(CompactClassifier.Load(output).LayerShapes(), l => l.Kind.StartsWith("quantized:") || l.Kind == "sparse");
        (exit, stdout, err) = CliProcess.Run("predict", output, "--json");
        Assert.True(exit == 0, err);
        using (var predicted = JsonDocument.Parse(stdout))
            Assert.Equal(chosen.GetProperty("finetuned_test_accuracy").GetDouble(), predicted.RootElement.GetProperty("test_accuracy").GetDouble(), 5);

        (exit, _, err) = CliProcess.Run("search", "--epochs", "2", "--generations", "2", "--population", "8", "--max-bytes", "50");
        Assert.Equal(1, exit);
        Assert.Contains("Closest reached", err);
    }
}
