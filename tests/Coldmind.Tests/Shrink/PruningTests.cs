using Xunit;
using Coldmind.Data;
using Coldmind.Nn;
using Coldmind.Shrink;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class PruningTests
{
    [Fact]
    public void Pruning_removes_the_requested_fraction_of_the_smallest_remaining_weights_and_apply_zeroes_them()
    {
        var model = new Mlp(20, [30], 5, new Rng(1));
        var dense = PruningMask.Dense(model);
        Assert.Equal(20 * 30 + 30 * 5, dense.Total);
        var half = dense.Prune(0.5, global: true);
        Assert.Equal(dense.Total / 2, half.Remaining);
        var quarter = half.Prune(0.5, global: true);
        Assert.InRange(quarter.Remaining, dense.Total / 4 - 1, dense.Total / 4 + 1);
        // every pruned weight is no larger than every kept one (global magnitude)
        var weights = model.NamedParameters().Where(p => p.Tensor.Rank >= 2).SelectMany(p => p.Tensor.ToArray().Select(MathF.Abs)).ToArray();
        var keep = quarter.ByName.Values.SelectMany(k => k).ToArray();
        Assert.True(weights.Where((_, i) => !keep[i]).Max() <= weights.Where((_, i) => keep[i]).Min());
        quarter.Apply();
        Assert.Equal(dense.Total - quarter.Remaining, model.NamedParameters().Where(p => p.Tensor.Rank >= 2).Sum(p => p.Tensor.ToArray().Count(v => v == 0)));
        var perLayer = dense.Prune(0.2, global: false).ByName.Values.Select(k => k.Count(x => !x)).ToArray();
        Assert.Equal([120, 15], perLayer); // 20 % of the hidden layer, 10 % of the output layer
        Assert.Throws<ColdmindException>(() => dense.Prune(1.0, true));
    }

    [Fact]
    public void Masked_training_keeps_pruned_weights_at_zero_and_rewinding_restores_survivors()
    {
        var splits = BuiltinData.Load("digits");
        var (model, mask, rounds) = LotteryTicket.Find(rng => new Mlp(64, [32], 10, rng), splits,
            new TrainOptions { Epochs = 3, BatchSize = 64, LearningRate = 3e-3f }, new LotteryTicket.Options(Rounds: 2, Rate: 0.5, Global: true, RandomControl: true), 0);
        Assert.Equal(3, rounds.Count);
        Assert.Equal(0.25, rounds[^1].Density, 2);
        Assert.All(rounds.Skip(1), r => Assert.NotNull(r.RandomReinitAccuracy));
        var kept = mask.ByName;
        foreach (var (name, p) in model.NamedParameters().Where(p => p.Tensor.Rank >= 2))
        {
            var w = p.ToArray();
            for (int i = 0; i < w.Length; i++) if (!kept[name][i]) Assert.Equal(0f, w[i]);
        }
        Assert.True(rounds[^1].TestAccuracy > 0.5f, $"{rounds[^1].TestAccuracy}"); // far above chance (10 %) after 3 epochs at a quarter of the weights
    }
}
