namespace Coldmind.Cognition;

/// <summary>
/// What an information source reports given the true class and what the edge model already saw:
/// P(o | s, e), the confusion matrix of its answers (another look by the edge model, or the cloud model on the
/// payload) in each context e (the edge's first report r and how confident it was), estimated on held-out data.
/// Conditioning on e keeps the prediction honest: a second look at the same scene, or a bigger model, tends to
/// fail on the inputs where the edge failed or hesitated, and an observer treated as independent would promise
/// more than it gives. Rows are smoothed hierarchically, each towards the coarser one with a few pseudo-examples:
/// P(o | s, e) towards P(o | s, r), that towards P(o | s) (itself with a pseudo-count), so a row seen rarely falls
/// back on what is known at the coarser level, and no report is impossible.
/// </summary>
public sealed class Observer
{
    private readonly double[] _likelihood; // (contexts, classes, classes): [e, s, o] = P(o | s, e)

    public string Name { get; }
    public int Classes { get; }
    public int Contexts { get; }

    public Observer(string name, int classes, int contexts, double[] likelihood)
    {
        if (likelihood.Length != contexts * classes * classes) throw new ArgumentException($"{likelihood.Length} likelihoods for {contexts} contexts of {classes} classes.");
        (Name, Classes, Contexts, _likelihood) = (name, classes, contexts, likelihood);
    }

    public double Likelihood(int given, int state, int report) => _likelihood[(given * Classes + state) * Classes + report];

    /// <param name="reports">the source's report for each example</param>
    /// <param name="given">the context of each example: the edge's report × <paramref name="contextsPerReport"/> + a finer index</param>
    /// <param name="priorWeight">pseudo-examples of the coarser row in every row</param>
    public static Observer Estimate(string name, ReadOnlySpan<int> reports, ReadOnlySpan<int> given, ReadOnlySpan<int> labels, int classes, int contextsPerReport,
        double pseudoCount = 0.5, double priorWeight = 4)
    {
        int k = classes, contexts = classes * contextsPerReport;
        var plain = new double[k * k];
        Array.Fill(plain, pseudoCount);
        var byReport = new double[k * k * k];
        var counts = new double[contexts * k * k];
        for (int i = 0; i < labels.Length; i++)
        {
            plain[labels[i] * k + reports[i]]++;
            byReport[(given[i] / contextsPerReport * k + labels[i]) * k + reports[i]]++;
            counts[(given[i] * k + labels[i]) * k + reports[i]]++;
        }
        Normalize(plain, k);
        for (int row = 0; row < k * k; row++)
            for (int o = 0; o < k; o++) byReport[row * k + o] += priorWeight * plain[row % k * k + o];
        Normalize(byReport, k);
        for (int row = 0; row < contexts * k; row++)
            for (int o = 0; o < k; o++) counts[row * k + o] += priorWeight * byReport[(row / k / contextsPerReport * k + row % k) * k + o];
        Normalize(counts, k);
        return new Observer(name, k, contexts, counts);
    }

    private static void Normalize(double[] rows, int width)
    {
        for (int r = 0; r < rows.Length; r += width)
        {
            var row = rows.AsSpan(r, width);
            double total = 0;
            foreach (double v in row) total += v;
            for (int j = 0; j < width; j++) row[j] /= total;
        }
    }

    /// <summary>The belief after the source reports <paramref name="report"/>: q(s) P(report | s, e), normalised.</summary>
    public double[] Update(ReadOnlySpan<double> belief, int given, int report)
    {
        var q = new double[Classes];
        double total = 0;
        for (int s = 0; s < Classes; s++) total += q[s] = belief[s] * Likelihood(given, s, report);
        for (int s = 0; s < Classes; s++) q[s] /= total;
        return q;
    }

    /// <summary>
    /// What observing would leave, predicted from <paramref name="belief"/> in context <paramref name="given"/>: the probability that the answer is wrong and the expected entropy (nats) of the
    /// posterior q(s | o) ∝ q(s) P(o | s, e), averaged over p(o) = Σ_s q(s) P(o | s, e). With
    /// <paramref name="answerIsReport"/> the agent answers with the report itself (the cloud's answer), so its error
    /// is Σ_s q(s) (1 − P(o = s | s, e)); otherwise it answers with the posterior's most probable class, wrong with
    /// probability 1 − Σ_o max_s q(s) P(o | s, e).
    /// </summary>
    public (double Error, double Entropy) Predict(ReadOnlySpan<double> belief, int given, bool answerIsReport)
    {
        double error = 0, entropy = 0, hit = 0;
        Span<double> joint = stackalloc double[Classes];
        for (int o = 0; o < Classes; o++)
        {
            double po = 0, best = 0;
            for (int s = 0; s < Classes; s++)
            {
                joint[s] = belief[s] * Likelihood(given, s, o);
                po += joint[s];
                best = Math.Max(best, joint[s]);
            }
            hit += best;
            if (po <= 0) continue;
            for (int s = 0; s < Classes; s++)
                if (joint[s] > 0) entropy -= joint[s] * Math.Log(joint[s] / po); // p(o) · H[q(· | o)]
        }
        if (answerIsReport)
            for (int s = 0; s < Classes; s++) error += belief[s] * (1 - Likelihood(given, s, s));
        else error = 1 - hit;
        return (error, entropy);
    }

    /// <summary>Shannon entropy in nats.</summary>
    public static double Entropy(ReadOnlySpan<double> p)
    {
        double h = 0;
        foreach (double v in p) if (v > 0) h -= v * Math.Log(v);
        return h;
    }
}
