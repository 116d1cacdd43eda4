using Xunit;
using Coldmind.Merging;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class MergeMethodTests
{
    private static float[] V(params float[] xs) => xs;

    [Fact]
    public void Linear_is_a_weighted_average_or_a_weighted_sum()
    {
        var a = V(1, 2, 3);
        var b = V(3, 2, 1);
        Assert.Equal(V(2.5f, 2, 1.5f), MergeMethods.Linear([a, b], [1, 3], normalize: true));
        Assert.Equal(V(10, 8, 6), MergeMethods.Linear([a, b], [1, 3], normalize: false));
    }

    [Fact]
    public void Task_arithmetic_adds_weighted_task_vectors_to_the_base()
    {
        var @base = V(1, 1, 1);
        var result = MergeMethods.TaskArithmetic(@base, [V(2, 1, 0), V(1, 3, 1)], [1, 0.5f], lambda: 2, normalize: false);
        // τ = (1, 0, −1) and (0, 2, 0): base + 2·(τa + 0.5·τb)
        Assert.Equal(V(3, 3, -1), result);
    }

    [Fact]
    public void Ties_trims_elects_the_sign_and_averages_the_agreeing_values()
    {
        var @base = new float[4];
        var a = V(4, -1, 2, 0.1f);
        var b = V(2, 3, -3, 0.2f);
        // density 0.75 keeps the 3 largest magnitudes of each: a → (4, −1, 2, 0), b → (2, 3, −3, 0)
        // elected signs: +, +, −, 0; agreeing means: (4+2)/2, 3/1, −3/1, nothing
        var result = MergeMethods.Ties(@base, [a, b], [1, 1], [0.75f, 0.75f], lambda: 1, normalize: true);
        Assert.Equal(V(3, 3, -3, 0), result);
    }

    [Fact]
    public void Dare_keeps_the_expected_task_vector_and_drops_the_rest()
    {
        var rng = new Rng(3);
        var @base = new float[2000];
        var model = Enumerable.Range(0, 2000).Select(i => 1f + i % 7).ToArray();
        var merged = MergeMethods.Dare(@base, [model], [1], [0.3f], 1, normalize: false, signConsensus: false, rng);
        int kept = merged.Count(v => v != 0);
        Assert.InRange(kept, 500, 700); // 30 % of 2 000, give or take four standard deviations
        for (int i = 0; i < merged.Length; i++)
            if (merged[i] != 0) Assert.Equal(model[i] / 0.3f, merged[i], 4);
        Assert.Equal(model.Sum(), merged.Sum(), model.Sum() * 0.08); // the expectation holds on the total
    }

    [Fact]
    public void Slerp_ends_at_its_inputs_and_keeps_the_norm_between_orthogonal_ones()
    {
        var a = V(1, 0, 0);
        var b = V(0, 1, 0);
        Assert.Equal(a, MergeMethods.Slerp(a, b, 0));
        var end = MergeMethods.Slerp(a, b, 1);
        Assert.Equal(0, end[0], 5);
        Assert.Equal(1, end[1], 5);
        var middle = MergeMethods.Slerp(a, b, 0.5f);
        Assert.Equal(1, Math.Sqrt(middle.Sum(v => v * v)), 5); // a lerp would give 0.707
        Assert.Equal(V(2, 2, 2), MergeMethods.Slerp(V(1, 1, 1), V(3, 3, 3), 0.5f)); // parallel: linear
    }

    [Fact]
    public void Keep_largest_keeps_the_fraction_with_the_largest_magnitudes()
    {
        Assert.Equal(V(0, -5, 0, 4), MergeMethods.KeepLargest(V(1, -5, 2, 4), 0.5f));
        Assert.Equal(new float[4], MergeMethods.KeepLargest(V(1, -5, 2, 4), 0));
        Assert.Equal(V(3, -1, 1, 0, 0), MergeMethods.KeepLargest(V(3, -1, 1, 1, -1), 0.6f)); // ties at the threshold: first ones kept
    }
}
