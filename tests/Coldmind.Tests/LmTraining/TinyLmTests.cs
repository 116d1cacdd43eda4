using Xunit;
using Coldmind.LmTraining;
using Coldmind.Nn;
using Coldmind.Runtime.Lm;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class TinyLmTests
{
    private static string Text() => File.ReadAllText(SharedFiles.Require("data/text/tinyshakespeare.txt"))[..40_000];

    [Theory]
    [InlineData(true, Activation.SquaredRelu, 2e-3)]
    [InlineData(true, Activation.Silu, 2e-3)]
    [InlineData(false, Activation.SquaredRelu, 1e-4)]
    public void Training_lowers_the_loss_and_the_exported_gguf_computes_what_the_model_computes(bool ternary, Activation activation, double tolerance)
    {
        string text = Text();
        var vocabulary = new CharacterVocabulary(text);
        var ids = vocabulary.Encode(text);
        var config = new TinyLmConfig(vocabulary.Size, Dim: 256, Layers: 1, Heads: 4, KvHeads: 2, FfnDim: 256, Ternary: ternary, FfnActivation: activation);
        var model = new TinyLm(config, new Rng(1));
        int[] train = ids[..36_000], validation = ids[36_000..];
        float before = LmTrainer.ValidationLoss(model, validation, 32, 16);
        var steps = LmTrainer.Train(model, train, validation, new LmTrainOptions(Steps: 40, Batch: 4, Context: 32, LearningRate: 3e-3f, EvalEvery: 40, EvalWindows: 16));
        Assert.True(steps[^1].ValidationLoss < before - 0.5f, $"validation loss {before} → {steps[^1].ValidationLoss}");

        using var dir = new TempDir();
        var path = dir.File("lm.gguf");
        TinyLmExport.Write(model, vocabulary, path, "test");
        using var lm = LanguageModel.Load(path);
        Assert.Equal(config.Vocab, lm.Config.VocabSize);
        var prompt = vocabulary.Encode("ROMEO:\nWhat say");
        Assert.Equal(prompt, lm.Tokenizer.Encode("ROMEO:\nWhat say"));
        var runtime = lm.CreateSession(64).Evaluate(prompt);
        float[] trained;
        using (Tensor.NoGrad()) trained = model.Logits(prompt, 1, prompt.Length).ToArray()[^config.Vocab..];
        double err = 0, norm = 0;
        for (int i = 0; i < trained.Length; i++) { err += Math.Pow(runtime[i] - trained[i], 2); norm += Math.Pow(trained[i], 2); }
        Assert.True(Math.Sqrt(err / norm) < tolerance, $"relative distance {Math.Sqrt(err / norm)}");
    }

    [Theory]
    [InlineData(false, 1e-6)]
    [InlineData(true, 2e-3)]
    public void A_written_model_reads_back_with_its_shape_vocabulary_and_function(bool ternary, double tolerance)
    {
        string text = Text();
        var vocabulary = new CharacterVocabulary(text);
        var ids = vocabulary.Encode(text);
        var config = new TinyLmConfig(vocabulary.Size, Dim: 256, Layers: 2, Heads: 4, KvHeads: 2, FfnDim: 256, Ternary: ternary, FfnActivation: Activation.Silu);
        var model = new TinyLm(config, new Rng(3));
        LmTrainer.Train(model, ids[..36_000], ids[36_000..], new LmTrainOptions(Steps: 5, Batch: 2, Context: 32, LearningRate: 3e-3f, EvalEvery: 5, EvalWindows: 4));
        using var dir = new TempDir();
        var path = dir.File("lm.gguf");
        TinyLmExport.Write(model, vocabulary, path, "test");

        var (read, readVocabulary) = TinyLmExport.Read(path);
        Assert.Equal(config, read.Config);
        Assert.Equal(vocabulary.Tokens, readVocabulary.Tokens);
        var prompt = vocabulary.Encode("ROMEO:\nWhat say");
        float[] original, back;
        using (Tensor.NoGrad())
        {
            original = model.Logits(prompt, 1, prompt.Length).ToArray();
            back = read.Logits(prompt, 1, prompt.Length).ToArray();
        }
        double err = 0, norm = 0;
        for (int i = 0; i < original.Length; i++) { err += Math.Pow(back[i] - original[i], 2); norm += Math.Pow(original[i], 2); }
        Assert.True(Math.Sqrt(err / norm) < tolerance, $"relative distance {Math.Sqrt(err / norm)}");
    }

    [Fact]
    public void Train_lm_command_reports_both_losses_and_writes_a_model_the_runtime_runs()
    {
        using var dir = new TempDir();
        var textFile = dir.File("t.txt");
        File.WriteAllText(textFile, Text());
        var output = dir.File("tiny.gguf");
        var (exit, stdout, err) = CliProcess.Run("train-lm", "--text", textFile, "--out", output, "--steps", "6", "--layers", "1", "--ffn", "256",
            "--batch", "2", "--context", "32", "--json");
        Assert.True(exit == 0, err);
        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.True(json.RootElement.GetProperty("ternary_validation_loss").GetSingle() > 0);
        Assert.True(json.RootElement.GetProperty("float_validation_loss").GetSingle() > 0);
        (exit, stdout, err) = CliProcess.Run("run", output, "-p", "KING:", "-n", "8", "--json");
        Assert.True(exit == 0, err);
        (exit, _, err) = CliProcess.Run("train-lm", "--text", textFile, "--out", output, "--dim", "200");
        Assert.Equal(1, exit);
        Assert.Contains("multiples of 256", err);
    }

    [Fact]
    public void Train_lm_fine_tunes_a_written_model_keeping_its_shape_and_vocabulary()
    {
        using var dir = new TempDir();
        var textFile = dir.File("t.txt");
        File.WriteAllText(textFile, Text());
        var other = dir.File("other.txt");
        File.WriteAllText(other, Text()[20_000..] + "zzzz ¡unseen characters! ŋ " + Text()[..20_000]);
        string start = dir.File("start.gguf"), tuned = dir.File("tuned.gguf");
        var (exit, _, err) = CliProcess.Run("train-lm", "--text", textFile, "--out", start, "--steps", "6", "--layers", "1", "--ffn", "256",
            "--batch", "2", "--context", "32", "--json", "--no-baseline", "--ffn-act", "silu");
        Assert.True(exit == 0, err);
        (exit, var stdout, err) = CliProcess.Run("train-lm", "--text", other, "--init", start, "--out", tuned, "--steps", "4",
            "--batch", "2", "--context", "32", "--layers", "3", "--json");
        Assert.True(exit == 0, err);
        using (var json = System.Text.Json.JsonDocument.Parse(stdout))
        {
            Assert.True(json.RootElement.GetProperty("ternary_validation_loss").GetSingle() > 0);
            Assert.Equal(System.Text.Json.JsonValueKind.Null, json.RootElement.GetProperty("float_validation_loss").ValueKind); // a fine-tune has no baseline
        }
        var (a, va) = TinyLmExport.Read(start);
        var (b, vb) = TinyLmExport.Read(tuned);
        Assert.Equal(a.Config, b.Config); // --layers 3 gives way to the model's own shape
        Assert.Equal(va.Tokens, vb.Tokens); // characters the start has not seen fall back to bytes
        Assert.NotEqual(a.NamedParameters().First(p => p.Name == "token_embd.weight").Tensor.ToArray(),
            b.NamedParameters().First(p => p.Name == "token_embd.weight").Tensor.ToArray());

        (exit, _, err) = CliProcess.Run("train-lm", "--text", textFile, "--init", start, "--vocab-text", other, "--out", tuned);
        Assert.Equal(1, exit);
        Assert.Contains("cannot be combined", err);
        (exit, _, err) = CliProcess.Run("train-lm", "--text", textFile, "--init", textFile, "--out", tuned);
        Assert.Equal(1, exit);
    }
}
