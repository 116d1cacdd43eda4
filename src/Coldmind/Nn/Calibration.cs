namespace Coldmind.Nn;

/// <summary>One bin of a reliability diagram: examples whose top probability fell in [Low, High).</summary>
public readonly record struct ReliabilityBin(double Low, double High, int Count, double MeanConfidence, double Accuracy);

/// <summary>How far a classifier's confidence is from its accuracy, and temperature scaling to close the gap.</summary>
public static class Calibration
{
    /// <summary>
    /// Examples binned by their top probability into <paramref name="bins"/> equal-width bins; each bin's mean
    /// confidence and accuracy (what a reliability diagram plots). <paramref name="probabilities"/> is (count, classes).
    /// </summary>
    public static ReliabilityBin[] Reliability(ReadOnlySpan<float> probabilities, ReadOnlySpan<int> labels, int classes, int bins = 15)
    {
        if (labels.Length == 0 || probabilities.Length != labels.Length * classes)
            throw new ColdmindException($"{probabilities.Length} probabilities for {labels.Length} examples of {classes} classes.");
        var count = new int[bins];
        var correct = new double[bins];
        var confidence = new double[bins];
        for (int i = 0; i < labels.Length; i++)
        {
            var p = probabilities.Slice(i * classes, classes);
            int top = TensorPrimitives.IndexOfMax(p);
            int b = Math.Min(bins - 1, (int)(p[top] * bins));
            count[b]++;
            confidence[b] += p[top];
            if (top == labels[i]) correct[b]++;
        }
        return Enumerable.Range(0, bins).Select(b => new ReliabilityBin((double)b / bins, (double)(b + 1) / bins, count[b],
            count[b] > 0 ? confidence[b] / count[b] : double.NaN, count[b] > 0 ? correct[b] / count[b] : double.NaN)).ToArray();
    }

    /// <summary>
    /// Expected calibration error (Guo et al. 2017): Σ_b (n_b / N) · |accuracy_b − mean confidence_b| over
    /// <paramref name="bins"/> equal-width bins of the top probability.
    /// </summary>
    public static float ExpectedCalibrationError(ReadOnlySpan<float> probabilities, ReadOnlySpan<int> labels, int classes, int bins = 15) =>
        ErrorOf(Reliability(probabilities, labels, classes, bins));

    public static float ErrorOf(IReadOnlyList<ReliabilityBin> bins)
    {
        int total = bins.Sum(b => b.Count);
        return (float)bins.Where(b => b.Count > 0).Sum(b => b.Count * Math.Abs(b.Accuracy - b.MeanConfidence) / total);
    }

    /// <summary>softmax(logits / T) of every row of (count, classes) logits.</summary>
    public static float[] Probabilities(ReadOnlySpan<float> logits, int classes, float temperature = 1f)
    {
        var p = new float[logits.Length];
        for (int i = 0; i < logits.Length / classes; i++)
        {
            var row = p.AsSpan(i * classes, classes);
            TensorPrimitives.Multiply(logits.Slice(i * classes, classes), 1f / temperature, row);
            TensorPrimitives.SoftMax(row, row);
        }
        return p;
    }

    /// <summary>Mean negative log-likelihood of the labels under softmax(logits / T).</summary>
    public static double NegativeLogLikelihood(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes, double temperature)
    {
        double sum = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            var row = logits.Slice(i * classes, classes);
            double max = TensorPrimitives.Max(row), z = 0;
            foreach (float v in row) z += Math.Exp((v - max) / temperature);
            sum += Math.Log(z) - (row[labels[i]] - max) / temperature;
        }
        return sum / labels.Length;
    }

    /// <summary>
    /// Temperature scaling (Guo et al. 2017): the T minimising the held-out NLL of softmax(logits / T). The NLL is
    /// convex in 1/T, so a golden-section search over 1/T ∈ [1/100, 100] finds the optimum; the accuracy does not change.
    /// </summary>
    public static float FitTemperature(ReadOnlySpan<float> logits, ReadOnlySpan<int> labels, int classes)
    {
        if (labels.Length == 0 || logits.Length != labels.Length * classes)
            throw new ColdmindException($"Fitting a temperature needs (examples × classes) logits: {logits.Length} for {labels.Length} examples of {classes} classes.");
        var l = logits.ToArray();
        var y = labels.ToArray();
        double Loss(double logBeta) => NegativeLogLikelihood(l, y, classes, Math.Exp(-logBeta));
        double lo = Math.Log(0.01), hi = Math.Log(100), ratio = (Math.Sqrt(5) - 1) / 2;
        double a = hi - ratio * (hi - lo), b = lo + ratio * (hi - lo), fa = Loss(a), fb = Loss(b);
        while (hi - lo > 1e-4)
        {
            if (fa < fb) { hi = b; b = a; fb = fa; a = hi - ratio * (hi - lo); fa = Loss(a); }
            else { lo = a; a = b; fa = fb; b = lo + ratio * (hi - lo); fb = Loss(b); }
        }
        return (float)Math.Exp(-(lo + hi) / 2);
    }
}
