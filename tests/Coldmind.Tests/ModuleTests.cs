using Xunit;
using Coldmind.Nn.Optim;
using Coldmind.Nn;
using Coldmind.Numerics;
using Coldmind.Tensors;
using static Coldmind.Tests.GradCheck;

namespace Coldmind.Tests;

public class ModuleTests
{
    [Theory]
    [InlineData(Activation.Silu)] [InlineData(Activation.SquaredRelu)]
    public void Transformer_block_gradients_match_finite_differences(Activation ffn)
    {
        var block = new TransformerBlock(new TransformerConfig(Dim: 8, Heads: 4, KvHeads: 2, FfnDim: 12, FfnActivation: ffn), new Rng(1));
        var x = Rand(2, 2, 5, 8);
        Check(t => block.Forward(t[0]), [x, .. block.Parameters()], maxProbes: 12);
    }

    [Fact]
    public void Parameters_have_stable_dotted_names()
    {
        var mlp = new Mlp(4, [3], 2, new Rng(0));
        Assert.Equal(["net.1.weight", "net.1.bias", "net.3.weight", "net.3.bias"], mlp.NamedParameters().Select(p => p.Name));
        var block = new TransformerBlock(new TransformerConfig(8, 2, 1, 16), new Rng(0));
        var names = block.NamedParameters().Select(p => p.Name).ToArray();
        Assert.Contains("attention.wq.weight", names);
        Assert.Contains("feed_forward.w2.weight", names);
        Assert.Equal(names.Length, names.Distinct().Count());
    }

    [Fact]
    public void Load_state_copies_by_name_and_refuses_missing_or_misshapen_tensors()
    {
        var a = new Mlp(4, [3], 2, new Rng(1));
        var b = new Mlp(4, [3], 2, new Rng(2));
        b.LoadState(a.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor));
        Assert.Equal(a.Parameters().SelectMany(p => p.ToArray()), b.Parameters().SelectMany(p => p.ToArray()));
        var state = a.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor);
        state["net.1.weight"] = Tensor.Zeros(3, 5);
        Assert.Contains("has shape [3, 5] in the checkpoint", Assert.Throws<ColdmindException>(() => b.LoadState(state)).Message);
        state.Remove("net.1.weight");
        Assert.Contains("no tensor 'net.1.weight'", Assert.Throws<ColdmindException>(() => b.LoadState(state)).Message);
    }

    [Fact]
    public void Embedding_and_norm_modules_have_their_shapes_and_names()
    {
        var emb = new Embedding(11, 6, new Rng(1));
        var ids = Tensor.FromArray([1f, 10f, 3f, 3f], 2, 2);
        var x = emb.Forward(ids);
        Assert.Equal([2, 2, 6], x.Shape);
        Assert.Equal(emb.Weight.ToArray().AsSpan(3 * 6, 6).ToArray(), x.ToArray().AsSpan(3 * 6, 6).ToArray());
        var ln = new LayerNorm(6);
        var y = ln.Forward(x).ToArray();
        Assert.Equal(0, y.Take(6).Average(), 5); // centred, unit scale at initialisation
        Assert.Equal(["weight", "bias"], ln.NamedParameters().Select(p => p.Name));
        Assert.Equal([2, 2, 6], new RmsNorm(6).Forward(x).Shape);
    }

    [Fact]
    public void Dropout_is_active_only_in_training_mode()
    {
        var drop = new Dropout(0.5f, new Rng(1));
        var x = Tensor.Full(1f, 1000);
        var y = drop.Forward(x).ToArray();
        Assert.Contains(0f, y);
        Assert.InRange(y.Average(), 0.85, 1.15); // inverted dropout keeps the expectation
        drop.Eval();
        Assert.Equal(x.ToArray(), drop.Forward(x).ToArray());
    }
}

[Trait("Category", "Kernels")]
public class OptimizerTests
{
    [Fact]
    public void AdamW_matches_the_formula_over_vector_and_tail_elements()
    {
        const int n = 37; // not a multiple of any vector width: exercises the vector body and the scalar tail
        var w = Tensor.FromArray(Enumerable.Range(0, n).Select(i => 0.1f * i - 1f).ToArray(), n).AsParameter();
        var grads = new[] { Enumerable.Range(0, n).Select(i => MathF.Sin(i)).ToArray(), Enumerable.Range(0, n).Select(i => MathF.Cos(i)).ToArray() };
        var opt = new AdamW([w], 0.01f, 0.9f, 0.999f, 1e-8f, weightDecay: 0.1f);
        var expected = w.ToArray().Select(v => (double)v).ToArray();
        var m = new double[n];
        var v = new double[n];
        for (int t = 1; t <= 2; t++)
        {
            w.ZeroGrad();
            w.AccumulateGrad(grads[t - 1]);
            opt.Step();
            for (int i = 0; i < n; i++)
            {
                double g = grads[t - 1][i];
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.999 * v[i] + 0.001 * g * g;
                double mh = m[i] / (1 - Math.Pow(0.9, t)), vh = v[i] / (1 - Math.Pow(0.999, t));
                expected[i] = expected[i] * (1 - 0.01 * 0.1) - 0.01 * mh / (Math.Sqrt(vh) + 1e-8);
            }
        }
        var actual = w.ToArray();
        for (int i = 0; i < n; i++) Assert.Equal(expected[i], actual[i], 1e-5);
    }

    [Fact]
    public void AdamW_split_over_the_pool_is_bit_identical_to_one_thread()
    {
        float[] Run(int threads)
        {
            using var pool = new WorkerPool(threads);
            var w = Tensor.Normal(new Rng(1), 1f, 100_003).AsParameter();
            var opt = new AdamW([w], 0.01f, pool: pool);
            for (int t = 0; t < 3; t++)
            {
                w.ZeroGrad();
                w.AccumulateGrad(Tensor.Normal(new Rng((ulong)t + 7), 1f, 100_003).ToArray());
                opt.Step();
            }
            return w.ToArray();
        }
        Assert.Equal(Run(1), Run(2));
    }

    [Fact]
    public void Sgd_with_nesterov_momentum_matches_the_formula()
    {
        var w = Tensor.FromArray([1f, -2f, 3f], 3).AsParameter();
        var opt = new Sgd([w], 0.1f, momentum: 0.9f, weightDecay: 0f, nesterov: true);
        double[] x = [1, -2, 3], buf = new double[3];
        for (int step = 0; step < 2; step++)
        {
            w.ZeroGrad();
            w.AccumulateGrad([0.5f, 0.5f, -1f]);
            opt.Step();
            double[] g = [0.5, 0.5, -1];
            for (int i = 0; i < 3; i++) { buf[i] = 0.9 * buf[i] + g[i]; x[i] -= 0.1 * (g[i] + 0.9 * buf[i]); }
        }
        Assert.Equal(x, w.ToArray().Select(v => (double)v), new Tolerance(1e-6));
    }

    [Fact]
    public void Cosine_schedule_warms_up_linearly_then_decays_to_the_floor()
    {
        var s = new CosineSchedule(1f, TotalSteps: 110, WarmupSteps: 10, MinFraction: 0.1f);
        Assert.Equal(0.1f, s.At(0), 1e-6f);
        Assert.Equal(1f, s.At(9), 1e-6f);
        Assert.Equal(1f, s.At(10), 1e-6f);
        Assert.Equal(0.55f, s.At(60), 1e-5f);
        Assert.Equal(0.1f, s.At(110), 1e-6f);
    }

    [Fact]
    public void Clipping_scales_the_global_norm()
    {
        var a = Tensor.Zeros(2).AsParameter();
        var b = Tensor.Zeros(1).AsParameter();
        a.AccumulateGrad([3f, 0f]);
        b.AccumulateGrad([4f]);
        var opt = new Sgd([a, b], 0.1f);
        Assert.Equal(5f, opt.ClipGradNorm(1f), 1e-6f);
        Assert.Equal([0.6f, 0f], a.Grad!);
        Assert.Equal(0.8f, b.Grad![0], 1e-6f);
    }

    private sealed class Tolerance(double eps) : IEqualityComparer<double>
    {
        public bool Equals(double x, double y) => Math.Abs(x - y) <= eps;
        public int GetHashCode(double obj) => 0;
    }
}

public class WorkerPoolTests
{
    [Fact]
    public void Runs_every_part_exactly_once_and_nested_jobs_inline()
    {
        using var pool = new WorkerPool(3);
        var hits = new int[100];
        pool.Run(100, p =>
        {
            Interlocked.Increment(ref hits[p]);
            pool.Run(2, _ => { }); // nested: runs inline, must not deadlock
        });
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void A_failing_part_surfaces_on_the_caller_and_the_pool_keeps_working()
    {
        using var pool = new WorkerPool(2);
        // Part 0 runs on the calling thread, part 1 on a worker: both kinds of failure must surface.
        foreach (int failing in new[] { 0, 1 })
            Assert.ThrowsAny<Exception>(() => pool.Run(4, p => { if (p == failing) throw new InvalidOperationException("boom"); }));
        int count = 0;
        pool.Run(4, _ => Interlocked.Increment(ref count));
        Assert.Equal(4, count);
    }
}
