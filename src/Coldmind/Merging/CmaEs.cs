using Coldmind.Tensors;

namespace Coldmind.Merging;

/// <summary>
/// CMA-ES, the (μ/μ_w, λ) evolution strategy with covariance matrix adaptation, as in Hansen's tutorial
/// ("The CMA Evolution Strategy: A Tutorial", 2016): rank-μ and rank-one updates of the covariance, cumulative
/// step-size adaptation. Minimises; only the ranks of the losses matter, so any ordering of candidates
/// (e.g. feasible before infeasible) can be told as ranks. Dimensions here are tens, so the covariance is
/// decomposed by Jacobi rotations every generation.
/// </summary>
public sealed class CmaEs
{
    private readonly int _n, _mu;
    private readonly double[] _weights;
    private readonly double _muEff, _cc, _cs, _c1, _cmu, _damps, _chiN;
    private readonly double[] _mean, _pc, _ps;
    private readonly double[,] _c, _b;
    private readonly double[] _d;
    private readonly Rng _rng;
    private double _sigma;
    private int _generation;
    private double[][] _z = [];

    public int Population { get; }
    public IReadOnlyList<double> Mean => _mean;

    public CmaEs(double[] mean, double sigma, Rng rng, int population = 0)
    {
        _n = mean.Length;
        if (_n < 1 || !(sigma > 0)) throw new ArgumentException("CMA-ES needs at least one dimension and a positive step size.");
        _rng = rng;
        _mean = (double[])mean.Clone();
        _sigma = sigma;
        Population = population > 0 ? Math.Max(2, population) : 4 + (int)(3 * Math.Log(_n));
        _mu = Population / 2;
        _weights = Enumerable.Range(1, _mu).Select(i => Math.Log(_mu + 0.5) - Math.Log(i)).ToArray();
        double sum = _weights.Sum();
        for (int i = 0; i < _mu; i++) _weights[i] /= sum;
        _muEff = 1 / _weights.Sum(w => w * w);
        _cc = (4 + _muEff / _n) / (_n + 4 + 2 * _muEff / _n);
        _cs = (_muEff + 2) / (_n + _muEff + 5);
        _c1 = 2 / ((_n + 1.3) * (_n + 1.3) + _muEff);
        _cmu = Math.Min(1 - _c1, 2 * (_muEff - 2 + 1 / _muEff) / ((_n + 2) * (_n + 2) + _muEff));
        _damps = 1 + 2 * Math.Max(0, Math.Sqrt((_muEff - 1) / (_n + 1)) - 1) + _cs;
        _chiN = Math.Sqrt(_n) * (1 - 1.0 / (4 * _n) + 1.0 / (21.0 * _n * _n));
        _pc = new double[_n];
        _ps = new double[_n];
        _c = new double[_n, _n];
        _b = new double[_n, _n];
        _d = new double[_n];
        for (int i = 0; i < _n; i++) (_c[i, i], _b[i, i], _d[i]) = (1, 1, 1);
    }

    /// <summary>λ new candidates x = m + σ·B·D·z, z ~ N(0, I).</summary>
    public double[][] Ask()
    {
        _z = new double[Population][];
        var xs = new double[Population][];
        for (int k = 0; k < Population; k++)
        {
            var z = _z[k] = new double[_n];
            for (int i = 0; i < _n; i++) z[i] = _rng.NextNormal();
            var x = xs[k] = new double[_n];
            for (int i = 0; i < _n; i++)
            {
                double y = 0;
                for (int j = 0; j < _n; j++) y += _b[i, j] * _d[j] * z[j];
                x[i] = _mean[i] + _sigma * y;
            }
        }
        return xs;
    }

    /// <summary>Updates the distribution from the losses of the candidates of the last <see cref="Ask"/> (lower is better).</summary>
    public void Tell(double[][] xs, double[] losses)
    {
        if (xs.Length != Population || losses.Length != Population) throw new ArgumentException($"Tell needs the {Population} candidates of the last Ask and their losses.");
        var order = Enumerable.Range(0, Population).OrderBy(k => losses[k]).ThenBy(k => k).ToArray();
        var old = (double[])_mean.Clone();
        for (int i = 0; i < _n; i++) _mean[i] = Enumerable.Range(0, _mu).Sum(r => _weights[r] * xs[order[r]][i]);

        // p_σ ← (1 − c_σ) p_σ + √(c_σ(2 − c_σ)μ_eff) · B·z_w, where z_w is the weighted mean of the selected z (C^(-1/2)(m' − m)/σ)
        var zw = new double[_n];
        for (int r = 0; r < _mu; r++)
            for (int i = 0; i < _n; i++) zw[i] += _weights[r] * _z[order[r]][i];
        double csFactor = Math.Sqrt(_cs * (2 - _cs) * _muEff);
        for (int i = 0; i < _n; i++)
        {
            double bz = 0;
            for (int j = 0; j < _n; j++) bz += _b[i, j] * zw[j];
            _ps[i] = (1 - _cs) * _ps[i] + csFactor * bz;
        }
        _generation++;
        double psNorm = Math.Sqrt(_ps.Sum(v => v * v));
        bool hsig = psNorm / Math.Sqrt(1 - Math.Pow(1 - _cs, 2 * _generation)) / _chiN < 1.4 + 2.0 / (_n + 1);
        double ccFactor = Math.Sqrt(_cc * (2 - _cc) * _muEff);
        for (int i = 0; i < _n; i++) _pc[i] = (1 - _cc) * _pc[i] + (hsig ? ccFactor * (_mean[i] - old[i]) / _sigma : 0);

        double decay = 1 - _c1 - _cmu + (hsig ? 0 : _c1 * _cc * (2 - _cc));
        for (int i = 0; i < _n; i++)
            for (int j = 0; j <= i; j++)
            {
                double rankMu = 0;
                for (int r = 0; r < _mu; r++)
                {
                    var x = xs[order[r]];
                    rankMu += _weights[r] * (x[i] - old[i]) * (x[j] - old[j]);
                }
                _c[i, j] = _c[j, i] = decay * _c[i, j] + _c1 * _pc[i] * _pc[j] + _cmu * rankMu / (_sigma * _sigma);
            }
        _sigma *= Math.Exp(_cs / _damps * (psNorm / _chiN - 1));
        Decompose();
    }

    /// <summary>C = B·D²·Bᵀ by cyclic Jacobi rotations; eigenvalues are floored so D stays positive.</summary>
    private void Decompose()
    {
        var a = (double[,])_c.Clone();
        for (int i = 0; i < _n; i++)
            for (int j = 0; j < _n; j++) _b[i, j] = i == j ? 1 : 0;
        for (int sweep = 0; sweep < 50; sweep++)
        {
            double off = 0;
            for (int p = 0; p < _n; p++)
                for (int q = p + 1; q < _n; q++) off += a[p, q] * a[p, q];
            if (off < 1e-22) break;
            for (int p = 0; p < _n; p++)
                for (int q = p + 1; q < _n; q++)
                {
                    if (Math.Abs(a[p, q]) < 1e-300) continue;
                    double theta = (a[q, q] - a[p, p]) / (2 * a[p, q]);
                    double t = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    if (theta == 0) t = 1;
                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < _n; k++)
                    {
                        double akp = a[k, p], akq = a[k, q];
                        a[k, p] = c * akp - s * akq;
                        a[k, q] = s * akp + c * akq;
                    }
                    for (int k = 0; k < _n; k++)
                    {
                        double apk = a[p, k], aqk = a[q, k];
                        a[p, k] = c * apk - s * aqk;
                        a[q, k] = s * apk + c * aqk;
                    }
                    for (int k = 0; k < _n; k++)
                    {
                        double bkp = _b[k, p], bkq = _b[k, q];
                        _b[k, p] = c * bkp - s * bkq;
                        _b[k, q] = s * bkp + c * bkq;
                    }
                }
        }
        for (int i = 0; i < _n; i++) _d[i] = Math.Sqrt(Math.Max(a[i, i], 1e-20));
    }
}
