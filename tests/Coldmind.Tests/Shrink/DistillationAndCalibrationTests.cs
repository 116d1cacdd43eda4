using Xunit;
using Coldmind.Data;
using Coldmind.Nn;
using Coldmind.Runtime.Lm;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class DistillationAndCalibrationTests
{
    [Fact]
    public void Expected_calibration_error_on_a_hand_computed_case()
    {
        // two examples at confidence 0.9 (one right), two at 0.6 (both right): |0.5 − 0.9|·2/4 + |1 − 0.6|·2/4 = 0.4
        float[] p = [0.9f, 0.1f, 0.9f, 0.1f, 0.6f, 0.4f, 0.4f, 0.6f];
        int[] labels = [0, 1, 0, 1];
        Assert.Equal(0.4f, Calibration.ExpectedCalibrationError(p, labels, 2), 5);
        Assert.Equal(0f, Calibration.ExpectedCalibrationError([1f, 0f], [0], 2), 5);
    }

    [Fact]
    public void Distilling_with_alpha_one_follows_the_teacher_even_against_the_labels()
    {
        var splits = BuiltinData.Load("digits");
        var train = splits.Train;
        // a "teacher" that always says class 3: a student trained on it alone learns to say 3
        var teacher = new float[train.Count * train.Classes];
        for (int i = 0; i < train.Count; i++) teacher[i * train.Classes + 3] = 10f;
        var student = new Mlp(64, [32], 10, new Rng(2));
        Trainer.Fit(student, train, null, new TrainOptions { Epochs = 3, TeacherLogits = teacher, DistillAlpha = 1f, DistillTemperature = 2f });
        var logits = Trainer.Logits(student, splits.Test);
        int threes = Enumerable.Range(0, splits.Test.Count).Count(i => Sampler.ArgMax(logits.AsSpan(i * 10, 10)) == 3);
        Assert.True(threes > 0.9 * splits.Test.Count, $"{threes} of {splits.Test.Count}");
        Assert.Throws<ColdmindException>(() => Trainer.Fit(student, train, null, new TrainOptions { Epochs = 1, TeacherLogits = new float[10] }));
    }
}
