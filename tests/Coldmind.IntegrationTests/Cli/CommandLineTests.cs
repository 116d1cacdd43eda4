using System.Text.Json;
using Xunit;

namespace Coldmind.Tests;

/// <summary>The `coldmind` command as a user runs it: a separate process, its exit code, stdout and stderr.</summary>
public class CommandLineTests
{
    [Fact]
    public void Train_json_reports_the_promised_fields_and_the_checkpoint_evaluates_the_same()
    {
        using var dir = new TempDir();
        var model = dir.File("digits.safetensors");
        var (exit, stdout, stderr) = CliProcess.Run("train", "--epochs", "8", "--threads", "1", "--out", model, "--json");
        Assert.True(exit == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        float acc = root.GetProperty("test_accuracy").GetSingle();
        Assert.InRange(acc, 0.9f, 1f);
        Assert.Equal(64 * 300 + 300 + 300 * 100 + 100 + 100 * 10 + 10, root.GetProperty("parameters").GetInt64());
        Assert.True(root.GetProperty("train_seconds").GetDouble() > 0);

        var (evalExit, evalOut, evalErr) = CliProcess.Run("eval", model, "--json");
        Assert.True(evalExit == 0, evalErr);
        using var eval = JsonDocument.Parse(evalOut);
        Assert.Equal(acc, eval.RootElement.GetProperty("test_accuracy").GetSingle());
    }

    [Fact]
    public void The_same_seed_gives_the_same_checkpoint_bytes_on_1_and_2_threads()
    {
        // 16 channels × 8×8 × batch 64 is large enough for the element-wise ops to split over the pool.
        using var dir = new TempDir();
        byte[] Train(int threads)
        {
            var path = dir.File($"t{threads}.safetensors");
            var (exit, _, stderr) = CliProcess.Run("train", "--model", "cnn", "--channels", "16,8", "--hidden", "16", "--epochs", "2", "--seed", "5",
                "--threads", threads.ToString(System.Globalization.CultureInfo.InvariantCulture), "--out", path, "--json");
            Assert.True(exit == 0, stderr);
            return File.ReadAllBytes(path);
        }
        Assert.Equal(Train(1), Train(2));
    }

    [Fact]
    public void A_ternary_checkpoint_is_rebuilt_as_ternary_by_eval()
    {
        using var dir = new TempDir();
        var model = dir.File("ternary.safetensors");
        var (exit, stdout, stderr) = CliProcess.Run("train", "--ternary", "--hidden", "64", "--epochs", "3", "--quant-warmup", "1", "--out", model, "--json");
        Assert.True(exit == 0, stderr);
        float trained = JsonDocument.Parse(stdout).RootElement.GetProperty("test_accuracy").GetSingle();
        (exit, stdout, stderr) = CliProcess.Run("eval", model, "--json");
        Assert.True(exit == 0, stderr);
        Assert.Equal(trained, JsonDocument.Parse(stdout).RootElement.GetProperty("test_accuracy").GetSingle());
    }

    [Fact]
    public void Help_lists_the_commands_and_options()
    {
        var (exit, stdout, _) = CliProcess.Run("--help");
        Assert.Equal(0, exit);
        Assert.Contains("train", stdout);
        var (trainExit, trainHelp, _) = CliProcess.Run("train", "--help");
        Assert.Equal(0, trainExit);
        foreach (var option in new[] { "--data", "--model", "--hidden", "--epochs", "--batch", "--lr", "--seed", "--threads", "--out", "--json" })
            Assert.Contains(option, trainHelp);
    }

    [Theory]
    [InlineData("File not found", "train", "--data", "/nonexistent/data.csv")]
    [InlineData("Unknown data", "train", "--data", "mnist-of-my-dreams")]
    [InlineData("--hidden expects positive whole numbers", "train", "--hidden", "300,abc")]
    [InlineData("--threads must be at least 1", "train", "--threads", "0")]
    [InlineData("A CNN needs image input", "train", "--data", "CSV", "--model", "cnn")]
    [InlineData("--out must name a .safetensors file", "train", "--out", "model.bin")]
    public void Bad_input_gives_one_clear_message_and_a_non_zero_exit(string expected, params string[] args)
    {
        using var dir = new TempDir();
        var csv = dir.File("ok.csv");
        File.WriteAllText(csv, "a,b,y\n" + string.Concat(Enumerable.Range(0, 40).Select(i => $"{i},{i % 3},{i % 2}\n")));
        var (exit, _, stderr) = CliProcess.Run(args.Select(a => a == "CSV" ? csv : a).ToArray());
        Assert.NotEqual(0, exit);
        Assert.Contains(expected, stderr);
        Assert.DoesNotContain("   at ", stderr); // no stack trace
    }

    [Fact]
    public void Ragged_csv_names_the_line()
    {
        using var dir = new TempDir();
        var csv = dir.File("ragged.csv");
        File.WriteAllText(csv, "a,b,y\n1,2,0\n1,2\n");
        var (exit, _, stderr) = CliProcess.Run("train", "--data", csv);
        Assert.Equal(1, exit);
        Assert.Contains("ragged.csv' line 3", stderr);
    }

    [Fact]
    public void A_diverging_run_stops_with_a_message_and_writes_no_checkpoint()
    {
        using var dir = new TempDir();
        var model = dir.File("never.safetensors");
        var (exit, _, stderr) = CliProcess.Run("train", "--lr", "1e30", "--optimizer", "sgd", "--epochs", "3", "--out", model);
        Assert.Equal(1, exit);
        Assert.Contains("Training diverged", stderr);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Eval_of_a_corrupt_checkpoint_is_refused()
    {
        using var dir = new TempDir();
        var model = dir.File("bad.safetensors");
        File.WriteAllBytes(model, [200, 0, 0, 0, 0, 0, 0, 0, (byte)'{']);
        var (exit, _, stderr) = CliProcess.Run("eval", model);
        Assert.Equal(1, exit);
        Assert.Contains("bad.safetensors", stderr);
    }

    [Fact]
    public void Shrink_names_every_stage_on_stderr_and_keeps_whole_table_rows_on_stdout()
    {
        using var dir = new TempDir();
        var (exit, stdout, stderr) = CliProcess.Run("shrink", "--epochs", "2", "--rounds", "2", "--out", dir.File("s.safetensors"));
        Assert.Equal(0, exit);
        foreach (var stage in new[] { "teacher", "student", "ticket round 0/2", "ticket round 2/2", "ternary", "measuring the ternary" })
            Assert.Contains(stage + ": done", stderr);
        Assert.DoesNotContain("teacher…", stdout); // progress never reaches the results
        // off a terminal no cell wraps: one line a stage, each with as many column rules as the header
        var rows = stdout.Split('\n').Where(l => l.StartsWith('│')).ToList();
        Assert.Equal(1 + 6, rows.Count);
        Assert.All(rows, r => Assert.Equal(rows[0].Count(c => c == '│'), r.Count(c => c == '│')));
        Assert.Contains(rows, r => r.Contains("204,064", StringComparison.Ordinal)); // the teacher's bytes, whole
    }

    [Fact]
    public void Predict_cost_and_modal_take_a_model_written_by_train()
    {
        using var dir = new TempDir();
        string model = dir.File("t.safetensors");
        Assert.Equal(0, CliProcess.Run("train", "--epochs", "1", "--hidden", "16", "--out", model).Exit);
        var (exit, stdout, stderr) = CliProcess.Run("predict", model, "--json");
        Assert.True(exit == 0, stderr);
        Assert.Contains("test_accuracy", stdout);
        (exit, stdout, stderr) = CliProcess.Run("cost", model, "--device", "stm32h7", "--json");
        Assert.True(exit == 0, stderr);
        Assert.Contains("joules_per_inference", stdout);
        (exit, _, stderr) = CliProcess.Run("modal", model, "--device", "stm32h7", "--rate", "10", "--duration", "10");
        Assert.True(exit == 0, stderr);
    }
}
