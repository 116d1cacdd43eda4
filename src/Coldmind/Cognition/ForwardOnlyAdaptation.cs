using Coldmind.Data;
using Coldmind.Runtime.Classifier;

namespace Coldmind.Cognition;

/// <summary>How inputs drift after deployment: the camera moves (a shift in pixels) or the light changes (a contrast factor).</summary>
public sealed record Drift(string Kind, float Amount)
{
    public static Drift Parse(string text)
    {
        var parts = text.Split(':');
        if (parts.Length == 2 && parts[0] is "shift" or "contrast"
            && float.TryParse(parts[1], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out float amount) && amount > 0)
            return new Drift(parts[0], amount);
        throw new ColdmindException($"--drift takes shift:PIXELS or contrast:FACTOR (e.g. shift:3, contrast:0.5), got '{text}'.");
    }

    /// <summary>The drifted copy of <paramref name="data"/>: images shifted right and down, or every feature scaled about 0.</summary>
    public Dataset Apply(Dataset data)
    {
        var x = new float[data.Features.Length];
        if (Kind == "contrast")
            TensorPrimitives.Multiply(data.Features, Amount, x);
        else
        {
            if (data.SampleShape is not [var c, var h, var w]) throw new ColdmindException($"A shift drift needs images; '{data.Name}' has samples of shape [{string.Join(", ", data.SampleShape)}].");
            int d = (int)Amount;
            for (int n = 0; n < data.Count * c; n++)
                for (int y = d; y < h; y++)
                    data.Features.AsSpan((n * h + y - d) * w, w - d).CopyTo(x.AsSpan((n * h + y) * w + d, w - d));
        }
        return new Dataset($"{data.Name} ({Kind} {Amount})", x, data.Labels, data.SampleShape, data.ClassNames);
    }
}

/// <summary>
/// Learning without a backward pass: the model's layers stay as they are (ternary ones included, which have no
/// latent weights on the device to train), and the head is refitted in closed form on the drifted examples'
/// features, ridge regression pulled towards the old head:
/// <code>
/// [W b] = argmin Σ_i ‖W φ_i + b − t_i‖² + λ ‖[W b] − [W₀ b₀]‖²,   t_i = the old head's logits + m (onehot(y_i) − softmax(old logits))
/// </code>
/// which is one linear solve of the (features + 1)² Gram matrix. The targets keep the old head's scale and move
/// each example's logits towards its label by a margin m, so the refit corrects the head rather than replacing it.
/// Forward passes only: what it costs is N inferences and <see cref="Result.SolveMacs"/>.
/// </summary>
public static class ForwardOnlyAdaptation
{
    /// <param name="SolveMacs">the refit's own arithmetic beyond the examples' inferences: the Gram matrix, the old head's logits and the solve</param>
    public sealed record Result(CompactClassifier Model, long SolveMacs);

    public static Result Refit(CompactClassifier model, Dataset examples, double lambda = 1.0, float margin = 4f)
    {
        if (examples.Count == 0) throw new ColdmindException("Adapting needs at least one labelled example.");
        if (examples.FeatureCount != model.Inputs || examples.Classes != model.Classes)
            throw new ColdmindException($"The model takes {model.Inputs} features and {model.Classes} classes; the examples have {examples.FeatureCount} and {examples.Classes}.");
        int d = model.FeatureWidth + 1, k = model.Classes;
        var (w0, b0) = model.Head();
        var gram = new double[d * d];
        var right = new double[d * k];
        var phi = new double[d];
        for (int i = 0; i < examples.Count; i++)
        {
            var f = model.Features(examples.Features.AsSpan(i * examples.FeatureCount, examples.FeatureCount));
            for (int j = 0; j < d - 1; j++) phi[j] = f[j];
            phi[d - 1] = 1;
            var logits = new float[k];
            for (int c = 0; c < k; c++) logits[c] = TensorPrimitives.Dot(w0.AsSpan(c * (d - 1), d - 1), f) + b0[c];
            var p = new float[k];
            TensorPrimitives.SoftMax(logits, p);
            for (int c = 0; c < k; c++)
            {
                double target = logits[c] + margin * ((c == examples.Labels[i] ? 1 : 0) - p[c]);
                for (int j = 0; j < d; j++) right[j * k + c] += phi[j] * target;
            }
            for (int a = 0; a < d; a++)
                for (int b = 0; b < d; b++) gram[a * d + b] += phi[a] * phi[b];
        }
        for (int a = 0; a < d; a++)
        {
            gram[a * d + a] += lambda;
            for (int c = 0; c < k; c++) right[a * k + c] += lambda * (a < d - 1 ? w0[c * (d - 1) + a] : b0[c]);
        }
        var solution = SolveSymmetric(gram, right, d, k);
        var w = new float[k * (d - 1)];
        var bias = new float[k];
        for (int c = 0; c < k; c++)
        {
            for (int j = 0; j < d - 1; j++) w[c * (d - 1) + j] = (float)solution[j * k + c];
            bias[c] = (float)solution[(d - 1) * k + c];
        }
        long macs = examples.Count * ((long)d * d + 2L * d * k) + (long)d * d * d / 3 + (long)d * d * k;
        return new Result(model.WithHead(w, bias), macs);
    }

    /// <summary>Cholesky solve of the symmetric positive definite (n, n) system for m right-hand sides (n, m).</summary>
    private static double[] SolveSymmetric(double[] a, double[] b, int n, int m)
    {
        var l = (double[])a.Clone();
        for (int j = 0; j < n; j++)
        {
            double sum = l[j * n + j];
            for (int p = 0; p < j; p++) sum -= l[j * n + p] * l[j * n + p];
            if (!(sum > 0)) throw new ColdmindException("The adaptation's normal equations are not positive definite; raise λ.");
            l[j * n + j] = Math.Sqrt(sum);
            for (int i = j + 1; i < n; i++)
            {
                double s = l[i * n + j];
                for (int p = 0; p < j; p++) s -= l[i * n + p] * l[j * n + p];
                l[i * n + j] = s / l[j * n + j];
            }
        }
        var x = (double[])b.Clone();
        for (int c = 0; c < m; c++)
        {
            for (int i = 0; i < n; i++)
            {
                double s = x[i * m + c];
                for (int p = 0; p < i; p++) s -= l[i * n + p] * x[p * m + c];
                x[i * m + c] = s / l[i * n + i];
            }
            for (int i = n - 1; i >= 0; i--)
            {
                double s = x[i * m + c];
                for (int p = i + 1; p < n; p++) s -= l[p * n + i] * x[p * m + c];
                x[i * m + c] = s / l[i * n + i];
            }
        }
        return x;
    }
}
