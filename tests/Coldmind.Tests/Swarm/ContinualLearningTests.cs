using Xunit;
using Coldmind.Data;
using Coldmind.Swarm;

namespace Coldmind.Tests;

public class ContinualLearningTests
{
    [Fact]
    public void Replay_keeps_much_of_the_first_task_that_plain_fine_tuning_forgets_and_ewc_keeps_more()
    {
        var splits = BuiltinData.Load("digits");
        var first = new HashSet<int> { 0, 1, 2, 3, 4 };
        var train = splits.Train;
        var a = Enumerable.Range(0, train.Count).Where(i => first.Contains(train.Labels[i])).ToArray();
        var b = Enumerable.Range(0, train.Count).Where(i => !first.Contains(train.Labels[i])).ToArray();
        var results = ContinualLearning.Run(LocalLearner.For(train, [32], 0), train, a, b, splits.Test, first,
            new ContinualOptions(Epochs: 5, BatchSize: 16, LearningRate: 0.1f, EwcStrength: 100, ReplayExamples: 100, FisherExamples: 200)).ToDictionary(r => r.Method);
        string all = string.Join("; ", results.Values.Select(r => $"{r.Method}: {r.FirstBefore:P1} → {r.FirstAfter:P1}, second {r.Second:P1}, both {r.Both:P1}"));
        Assert.True(results["fine-tuning"].FirstBefore > 0.9, all);
        Assert.True(results["fine-tuning"].Forgetting > 0.5, all);
        Assert.True(results["replay"].Forgetting < results["fine-tuning"].Forgetting - 0.5, all);
        Assert.True(results["replay"].Both > results["fine-tuning"].Both + 0.3, all);
        Assert.True(results["EWC + replay"].Forgetting < results["replay"].Forgetting, all); // the Fisher pull keeps more of task 1
    }
}
