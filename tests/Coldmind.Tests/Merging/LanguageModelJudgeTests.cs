using Xunit;
using Coldmind.LmTraining;
using Coldmind.Merging;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class LanguageModelJudgeTests
{
    [Theory]
    [InlineData(false, 1e-4)]
    [InlineData(true, 2e-3)]
    public void The_judge_scores_a_written_model_as_the_trainer_scores_it(bool ternary, double tolerance)
    {
        string text = File.ReadAllText(SharedFiles.Require("data/text/tinyshakespeare.txt"))[..20_000];
        var vocabulary = new CharacterVocabulary(text);
        var ids = vocabulary.Encode(text);
        var model = new TinyLm(new TinyLmConfig(vocabulary.Size, Dim: 256, Layers: 1, Heads: 4, KvHeads: 4, FfnDim: 256, Ternary: ternary), new Rng(1));
        LmTrainer.Train(model, ids[..16_000], ids[16_000..], new LmTrainOptions(Steps: 10, Batch: 4, Context: 32, LearningRate: 3e-3f, EvalEvery: 10, EvalWindows: 8));
        using var dir = new TempDir();
        string path = dir.File("lm.gguf");
        TinyLmExport.Write(model, vocabulary, path, "lm");
        var loaded = MergeModel.Load(path);
        Assert.Equal(ternary, LanguageModelJudge.ConfigOf(loaded).Ternary);
        int[] held = vocabulary.Encode(text[16_000..]);
        Assert.Equal(held, CharacterVocabulary.FromTokens(vocabulary.Tokens, "test").Encode(text[16_000..]));
        var judgement = new LanguageModelJudge(held, held, 32, 8, null).Judge(loaded);
        double expected = LmTrainer.ValidationLoss(model, held, 32, 8);
        Assert.Equal(expected, -judgement.Score, tolerance);
        Assert.Equal(1, judgement.Layers);
    }
}
