using Coldmind.Tensors;

namespace Coldmind.Data;

/// <summary>
/// A labelled classification set held in memory: Features (count, features) row-major, where each
/// example has <see cref="SampleShape"/> (e.g. [64] for a table, [1, 28, 28] for an image); Labels in 0..Classes−1.
/// </summary>
public sealed class Dataset
{
    public string Name { get; }
    public float[] Features { get; }
    public int[] Labels { get; }
    public int[] SampleShape { get; }
    public string[] ClassNames { get; }

    public int Count => Labels.Length;
    public int FeatureCount { get; }
    public int Classes => ClassNames.Length;

    public Dataset(string name, float[] features, int[] labels, int[] sampleShape, string[] classNames)
    {
        FeatureCount = Shape.Numel(sampleShape);
        if (features.Length != labels.Length * FeatureCount)
            throw new ColdmindException($"Data set '{name}': {features.Length} feature values for {labels.Length} examples of shape {Shape.Format(sampleShape)}.");
        foreach (int y in labels)
            if ((uint)y >= (uint)classNames.Length) throw new ColdmindException($"Data set '{name}': label {y} outside 0..{classNames.Length - 1}.");
        Name = name;
        Features = features;
        Labels = labels;
        SampleShape = sampleShape;
        ClassNames = classNames;
    }

    public Dataset Subset(IReadOnlyList<int> indices, string? name = null)
    {
        int f = FeatureCount;
        var x = new float[indices.Count * f];
        var y = new int[indices.Count];
        for (int i = 0; i < indices.Count; i++)
        {
            Features.AsSpan(indices[i] * f, f).CopyTo(x.AsSpan(i * f, f));
            y[i] = Labels[indices[i]];
        }
        return new Dataset(name ?? Name, x, y, SampleShape, ClassNames);
    }

    /// <summary>The examples whose label <paramref name="keep"/> accepts: a task's classes, or the others.</summary>
    public Dataset WithLabels(Func<int, bool> keep) => Subset(Enumerable.Range(0, Count).Where(i => keep(Labels[i])).ToArray());

    /// <summary>FNV-1a over the labels and feature bits of the examples at <paramref name="indices"/>, in order: which data a device holds.</summary>
    public ulong Fingerprint(ReadOnlySpan<int> indices)
    {
        ulong h = 14695981039346656037UL;
        foreach (int e in indices)
        {
            h = (h ^ (uint)Labels[e]) * 1099511628211UL;
            foreach (float x in Features.AsSpan(e * FeatureCount, FeatureCount)) h = (h ^ BitConverter.SingleToUInt32Bits(x)) * 1099511628211UL;
        }
        return h;
    }

    /// <summary>The examples at <paramref name="indices"/> as a tensor (batch, sample shape…).</summary>
    public Tensor Inputs(ReadOnlySpan<int> indices)
    {
        int f = FeatureCount;
        var x = new float[indices.Length * f];
        for (int i = 0; i < indices.Length; i++) Features.AsSpan(indices[i] * f, f).CopyTo(x.AsSpan(i * f, f));
        return Tensor.FromArray(x, [indices.Length, .. SampleShape]);
    }

    public int[] LabelsAt(ReadOnlySpan<int> indices)
    {
        var y = new int[indices.Length];
        for (int i = 0; i < y.Length; i++) y[i] = Labels[indices[i]];
        return y;
    }

    /// <summary>Per-feature mean and standard deviation (for standardising tables such as CSV input).</summary>
    public (float[] Mean, float[] Std) FeatureMoments()
    {
        int f = FeatureCount;
        var mean = new double[f];
        var sq = new double[f];
        for (int i = 0; i < Count; i++)
            for (int j = 0; j < f; j++) { double v = Features[i * f + j]; mean[j] += v; sq[j] += v * v; }
        var m = new float[f];
        var s = new float[f];
        for (int j = 0; j < f; j++)
        {
            double mu = mean[j] / Math.Max(Count, 1);
            m[j] = (float)mu;
            s[j] = (float)Math.Sqrt(Math.Max(sq[j] / Math.Max(Count, 1) - mu * mu, 0));
        }
        return (m, s);
    }

    /// <summary>A copy with x ← (x − mean) / std per feature (features with std 0 are only centred).</summary>
    public Dataset Standardize(float[] mean, float[] std)
    {
        int f = FeatureCount;
        var x = (float[])Features.Clone();
        for (int i = 0; i < Count; i++)
            for (int j = 0; j < f; j++)
                x[i * f + j] = (x[i * f + j] - mean[j]) / (std[j] > 1e-12f ? std[j] : 1f);
        return new Dataset(Name, x, Labels, SampleShape, ClassNames);
    }
}

/// <summary>Train, validation and test parts of one data set.</summary>
public sealed record DataSplits(Dataset Train, Dataset Validation, Dataset Test)
{
    /// <summary>
    /// Stratified split: each class is shuffled with the seed and cut in the same proportions,
    /// so every part keeps the class balance of the whole.
    /// </summary>
    public static DataSplits Stratified(Dataset data, double validationFraction, double testFraction, ulong seed)
    {
        if (validationFraction < 0 || testFraction <= 0 || validationFraction + testFraction >= 1)
            throw new ColdmindException($"Split fractions validation {validationFraction} and test {testFraction} must be ≥ 0, > 0 and sum below 1.");
        var rng = new Rng(seed);
        List<int> train = [], val = [], test = [];
        for (int c = 0; c < data.Classes; c++)
        {
            var idx = Enumerable.Range(0, data.Count).Where(i => data.Labels[i] == c).ToArray();
            rng.Shuffle(idx.AsSpan());
            int nTest = (int)Math.Round(idx.Length * testFraction), nVal = (int)Math.Round(idx.Length * validationFraction);
            test.AddRange(idx[..nTest]);
            val.AddRange(idx[nTest..(nTest + nVal)]);
            train.AddRange(idx[(nTest + nVal)..]);
        }
        return new DataSplits(data.Subset(Sorted(train), data.Name + "/train"), data.Subset(Sorted(val), data.Name + "/validation"), data.Subset(Sorted(test), data.Name + "/test"));
    }

    /// <summary>A given test set; validation is carved out of the training set, stratified.</summary>
    public static DataSplits WithTestSet(Dataset train, Dataset test, double validationFraction, ulong seed)
    {
        var inner = Stratified(train, 0, validationFraction, seed);
        return new DataSplits(inner.Train, inner.Test.Subset(Enumerable.Range(0, inner.Test.Count).ToArray(), train.Name + "/validation"), test);
    }

    private static int[] Sorted(List<int> xs) { var a = xs.ToArray(); Array.Sort(a); return a; }
}

/// <summary>Shuffled mini-batches of example indices: a new seeded order every epoch, the last batch may be short.</summary>
public static class Batches
{
    public static IEnumerable<int[]> Shuffled(int count, int batchSize, Rng rng)
    {
        if (batchSize < 1) throw new ColdmindException($"Batch size must be at least 1, got {batchSize}.");
        var order = Enumerable.Range(0, count).ToArray();
        rng.Shuffle(order.AsSpan());
        for (int i = 0; i < count; i += batchSize) yield return order[i..Math.Min(count, i + batchSize)];
    }

    public static IEnumerable<int[]> InOrder(int count, int batchSize)
    {
        for (int i = 0; i < count; i += batchSize) yield return Enumerable.Range(i, Math.Min(batchSize, count - i)).ToArray();
    }
}
