using Xunit;
using Coldmind.Tensors;

namespace Coldmind.Tests;

/// <summary>
/// Central finite differences against the autodiff gradient. The scalar probed is Σ f(x) ⊙ R for a fixed
/// random R (so every output element matters), summed in double; each input element is nudged by ±h.
/// </summary>
internal static class GradCheck
{
    public static void Check(Func<Tensor[], Tensor> f, Tensor[] inputs, float h = 1e-2f, double atol = 5e-3, double rtol = 2e-2, int maxProbes = 60)
    {
        foreach (var x in inputs) { x.AsParameter(); x.ZeroGrad(); }
        var y = f(inputs);
        var rng = new Rng(99);
        var r = new float[y.Numel];
        for (int i = 0; i < r.Length; i++) r[i] = rng.NextFloat() * 2 - 1;
        y.Backward(r);
        for (int t = 0; t < inputs.Length; t++)
        {
            var x = inputs[t];
            var analytic = x.Grad ?? new float[x.Numel];
            var data = x.Storage;
            int step = Math.Max(1, x.Numel / maxProbes);
            for (int e = 0; e < x.Numel; e += step)
            {
                float saved = data[e];
                data[e] = saved + h; double fp = Probe(f, inputs, r);
                data[e] = saved - h; double fm = Probe(f, inputs, r);
                data[e] = saved;
                double numeric = (fp - fm) / (2 * h);
                double diff = Math.Abs(numeric - analytic[e]);
                Assert.True(diff <= atol + rtol * Math.Abs(numeric),
                    $"input {t} element {e}: autodiff {analytic[e]:G6}, finite difference {numeric:G6} (|Δ| {diff:G3})");
            }
        }
    }

    private static double Probe(Func<Tensor[], Tensor> f, Tensor[] inputs, float[] r)
    {
        using var _ = Tensor.NoGrad();
        var y = f(inputs).ToArray();
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += (double)y[i] * r[i];
        return s;
    }

    public static Tensor Rand(int seed, params int[] shape) => Tensor.Normal(new Rng((ulong)seed), 1f, shape);

    /// <summary>Random values kept at least 0.2 away from zero, for ops with a kink at 0 (relu).</summary>
    public static Tensor RandAwayFromZero(int seed, params int[] shape)
    {
        var t = Rand(seed, shape);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] += s[i] >= 0 ? 0.2f : -0.2f;
        return t;
    }
}
