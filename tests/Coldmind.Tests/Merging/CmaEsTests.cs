using Xunit;
using Coldmind.Merging;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class CmaEsTests
{
    [Fact]
    public void Minimises_an_ill_conditioned_non_separable_quadratic()
    {
        const int n = 8;
        var optimum = Enumerable.Range(0, n).Select(i => 0.5 + 0.1 * i).ToArray();
        double Loss(double[] x)
        {
            // a scaled quadratic in mixed coordinates (axis weights 1 to 100): only a learned covariance follows it quickly
            double sum = 0;
            for (int i = 0; i < n; i++)
            {
                double y = 0;
                for (int j = 0; j < n; j++) y += (x[j] - optimum[j]) * Math.Cos(0.3 * (i + 1) * (j + 1));
                sum += Math.Pow(100, (double)i / (n - 1)) * y * y;
            }
            return sum;
        }
        var cma = new CmaEs(new double[n], 0.5, new Rng(1));
        double best = double.MaxValue;
        for (int g = 0; g < 400 && best > 1e-10; g++)
        {
            var xs = cma.Ask();
            var losses = xs.Select(Loss).ToArray();
            best = Math.Min(best, losses.Min());
            cma.Tell(xs, losses);
        }
        Assert.True(best < 1e-10, $"best loss {best}");
        for (int i = 0; i < n; i++) Assert.Equal(optimum[i], cma.Mean[i], 3);
    }
}
