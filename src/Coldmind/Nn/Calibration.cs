namespace Coldmind.Nn;

/// <summary>How far a classifier's confidence is from its accuracy.</summary>
public static class Calibration
{
    /// <summary>
    /// Expected calibration error (Guo et al. 2017): examples binned by their top probability into
    /// <paramref name="bins"/> equal-width bins; Σ_b (n_b / N) · |accuracy_b − mean confidence_b|.
    /// </summary>
    public static float ExpectedCalibrationError(ReadOnlySpan<float> probabilities, ReadOnlySpan<int> labels, int classes, int bins = 15)
    {
        if (labels.Length == 0 || probabilities.Length != labels.Length * classes)
            throw new ColdmindException($"{probabilities.Length} probabilities for {labels.Length} examples of {classes} classes.");
        var count = new int[bins];
        var correct = new double[bins];
        var confidence = new double[bins];
        for (int i = 0; i < labels.Length; i++)
        {
            var p = probabilities.Slice(i * classes, classes);
            int top = 0;
            for (int c = 1; c < classes; c++) if (p[c] > p[top]) top = c;
            int b = Math.Min(bins - 1, (int)(p[top] * bins));
            count[b]++;
            confidence[b] += p[top];
            if (top == labels[i]) correct[b]++;
        }
        double ece = 0;
        for (int b = 0; b < bins; b++)
            if (count[b] > 0) ece += Math.Abs(correct[b] - confidence[b]) / labels.Length;
        return (float)ece;
    }
}
