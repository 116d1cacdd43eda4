using Xunit;
using Coldmind.Nn.Optim;
using Coldmind.Numerics;
using Coldmind.Tensors;

namespace Coldmind.Tests;

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
