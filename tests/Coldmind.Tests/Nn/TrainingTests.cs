using Xunit;
using Coldmind.Data;
using Coldmind.Nn;
using Coldmind.Tensors;

namespace Coldmind.Tests;

/// <summary>Training end to end on real data: determinism, and the accuracy the foundation promises.</summary>
public class TrainingTests
{
    [Fact]
    public void Same_seed_and_threads_give_bit_identical_weights_and_accuracy()
    {
        var splits = BuiltinData.Load("digits", seed: 3);
        (float[] Weights, float Accuracy) Train()
        {
            var model = ClassifierSpec.ForCnn(splits.Train.SampleShape, 10, [8], 32).Build(new Rng(3));
            Trainer.Fit(model, splits.Train, null, new TrainOptions { Epochs = 2, BatchSize = 32, Seed = 3 });
            return (model.Parameters().SelectMany(p => p.ToArray()).ToArray(), Trainer.Accuracy(model, splits.Test));
        }
        var a = Train();
        var b = Train();
        Assert.Equal(a.Weights, b.Weights);
        Assert.Equal(a.Accuracy, b.Accuracy);
    }

    [Fact]
    public void Mlp_on_digits_reaches_96_percent()
    {
        var splits = BuiltinData.Load("digits");
        var model = ClassifierSpec.ForMlp(splits.Train.SampleShape, 10, [300, 100]).Build(new Rng(0));
        Trainer.Fit(model, splits.Train, null, new TrainOptions { Epochs = 20, BatchSize = 64 });
        Assert.True(Trainer.Accuracy(model, splits.Test) >= 0.96f);
    }

    [Fact]
    [Trait("Category", "Accuracy")]
    public void Mlp_784_300_100_on_fashion_mnist_reaches_88_5_percent()
    {
        var splits = BuiltinData.Load("fashion-mnist");
        var model = ClassifierSpec.ForMlp(splits.Train.SampleShape, 10, [300, 100]).Build(new Rng(0));
        Trainer.Fit(model, splits.Train, null, new TrainOptions { Epochs = 20, BatchSize = 128 });
        float acc = Trainer.Accuracy(model, splits.Test);
        Assert.True(acc >= 0.885f, $"test accuracy {acc:P2}");
    }

    [Fact]
    [Trait("Category", "Accuracy")]
    public void Small_cnn_on_fashion_mnist_reaches_90_5_percent()
    {
        var splits = BuiltinData.Load("fashion-mnist");
        var model = ClassifierSpec.ForCnn(splits.Train.SampleShape, 10, [16, 32], 128).Build(new Rng(0));
        Trainer.Fit(model, splits.Train, null, new TrainOptions { Epochs = 7, BatchSize = 64, LearningRate = 2e-3f });
        float acc = Trainer.Accuracy(model, splits.Test);
        Assert.True(acc >= 0.905f, $"test accuracy {acc:P2}");
    }
}
