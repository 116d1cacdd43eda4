using Xunit;
using Coldmind.Data;
using Coldmind.Nn;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class BitLinearTests
{
    [Fact]
    public void Ternary_weights_take_three_values_scaled_by_the_mean_magnitude()
    {
        var w = GradCheck.Rand(1, 8, 16);
        float gamma = w.ToArray().Average(MathF.Abs);
        var q = w.TernaryWeightsSte().ToArray();
        Assert.All(q, v => Assert.True(v == 0f || MathF.Abs(MathF.Abs(v) - gamma) < 1e-6f, $"{v} is not in {{-γ, 0, γ}}, γ = {gamma}"));
        Assert.Contains(0f, q);
        Assert.Equal(w.ToArray(), w.TernaryWeightsSte(lambda: 0f).ToArray()); // λ = 0: still the float weights
    }

    [Fact]
    public void Int8_activations_keep_each_rows_maximum_and_round_to_255_levels()
    {
        var x = GradCheck.Rand(2, 3, 40);
        var q = x.Int8ActivationsSte().ToArray();
        var xs = x.ToArray();
        for (int r = 0; r < 3; r++)
        {
            var row = xs.AsSpan(r * 40, 40).ToArray();
            float amax = row.Max(MathF.Abs), step = amax / 127;
            for (int j = 0; j < 40; j++)
            {
                float v = q[r * 40 + j];
                Assert.True(MathF.Abs(v - row[j]) <= step / 2 + 1e-6f);
                Assert.Equal(MathF.Round(v / step), v / step, 3);
            }
        }
    }

    [Fact]
    public void The_straight_through_estimator_passes_gradients_unchanged()
    {
        foreach (var op in new Func<Tensor, Tensor>[] { t => t.TernaryWeightsSte(), t => t.Int8ActivationsSte(), t => t.TernaryWeightsSte(0.5f) })
        {
            var x = GradCheck.Rand(3, 4, 6).AsParameter();
            var seed = Enumerable.Range(0, 24).Select(i => i * 0.1f - 1f).ToArray();
            op(x).Backward(seed);
            Assert.Equal(seed, x.Grad!);
        }
    }

    [Fact]
    public void Bit_linear_has_a_latent_weight_and_a_sub_norm_and_no_bias()
    {
        var layer = new BitLinear(16, 8, new Rng(1));
        Assert.Equal(["weight", "norm.weight"], layer.NamedParameters().Select(p => p.Name));
        var y = layer.Forward(GradCheck.Rand(4, 5, 16));
        Assert.Equal([5, 8], y.Shape);
    }

    [Fact]
    public void A_ternary_mlp_trains_on_digits_and_quantization_aware_conversion_beats_plain_ternarization()
    {
        var splits = BuiltinData.Load("digits");
        var options = new TrainOptions { Epochs = 20, BatchSize = 64 };
        var fromScratch = ClassifierSpec.ForMlp(splits.Train.SampleShape, 10, [128, 64], ternary: true).Build(new Rng(0));
        Trainer.Fit(fromScratch, splits.Train, null, options);
        Assert.True(Trainer.Accuracy(fromScratch, splits.Test) >= 0.93f);

        // A float model, then the same weights ternarized as they are (post-training) or fine-tuned with a λ warm-up.
        var floatModel = ClassifierSpec.ForMlp(splits.Train.SampleShape, 10, [128, 64]).Build(new Rng(1));
        Trainer.Fit(floatModel, splits.Train, null, options);
        var state = floatModel.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor);
        var posttraining = ClassifierSpec.ForMlp(splits.Train.SampleShape, 10, [128, 64], ternary: true).Build(new Rng(2));
        posttraining.LoadState(state, partial: true);
        var converted = ClassifierSpec.ForMlp(splits.Train.SampleShape, 10, [128, 64], ternary: true).Build(new Rng(2));
        converted.LoadState(state, partial: true);
        Trainer.Fit(converted, splits.Train, null, new TrainOptions { Epochs = 5, BatchSize = 64, LearningRate = 3e-4f, QuantizationWarmup = 0.5f });
        float plain = Trainer.Accuracy(posttraining, splits.Test), aware = Trainer.Accuracy(converted, splits.Test);
        Assert.True(aware >= 0.93f && aware > plain, $"converted {aware:P2}, plain ternarization {plain:P2}");
    }
}
