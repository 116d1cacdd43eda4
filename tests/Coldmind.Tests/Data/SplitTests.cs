using Xunit;
using Coldmind.Data;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class SplitTests
{
    [Fact]
    public void Stratified_split_keeps_class_balance_and_covers_everything_once()
    {
        var digits = BuiltinData.Digits();
        Assert.Equal(1797, digits.Count);
        Assert.Equal([1, 8, 8], digits.SampleShape);
        var s = DataSplits.Stratified(digits, 0.1, 0.2, seed: 7);
        Assert.Equal(digits.Count, s.Train.Count + s.Validation.Count + s.Test.Count);
        for (int c = 0; c < 10; c++)
        {
            double whole = digits.Labels.Count(y => y == c) / (double)digits.Count;
            double test = s.Test.Labels.Count(y => y == c) / (double)s.Test.Count;
            Assert.InRange(test, whole - 0.01, whole + 0.01);
        }
        var again = DataSplits.Stratified(digits, 0.1, 0.2, seed: 7);
        Assert.Equal(s.Test.Features, again.Test.Features);
    }

    [Fact]
    public void Shuffled_batches_visit_every_example_once_per_epoch()
    {
        var seen = Batches.Shuffled(1000, 64, new Rng(1)).SelectMany(b => b).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, 1000), seen);
        Assert.NotEqual(Enumerable.Range(0, 64), Batches.Shuffled(1000, 64, new Rng(1)).First());
    }
}
