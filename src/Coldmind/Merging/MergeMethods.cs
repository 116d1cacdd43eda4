using Coldmind.Tensors;

namespace Coldmind.Merging;

/// <summary>
/// The merge methods of mergekit, on one tensor at a time (flattened; every input has the same length).
/// <c>weights[i]</c> and <c>densities[i]</c> belong to <c>models[i]</c>. Task vectors are τᵢ = modelᵢ − base.
/// </summary>
public static class MergeMethods
{
    /// <summary>Σ wᵢ·modelᵢ, divided by Σ wᵢ when <paramref name="normalize"/> (a weighted average).</summary>
    public static float[] Linear(IReadOnlyList<float[]> models, IReadOnlyList<float> weights, bool normalize)
    {
        var result = new float[models[0].Length];
        for (int m = 0; m < models.Count; m++)
            TensorPrimitives.MultiplyAdd(models[m], weights[m], result, result);
        float sum = weights.Sum();
        if (normalize && sum != 0) TensorPrimitives.Divide(result, sum, result);
        return result;
    }

    /// <summary>Task arithmetic (Ilharco et al. 2023): base + λ·Σ wᵢ·τᵢ.</summary>
    public static float[] TaskArithmetic(float[] @base, IReadOnlyList<float[]> models, IReadOnlyList<float> weights, float lambda, bool normalize)
    {
        var deltas = models.Select(m => Delta(m, @base)).ToList();
        return Combine(@base, deltas, weights, lambda, normalize, signConsensus: false);
    }

    /// <summary>
    /// TIES (Yadav et al. 2023): trim each τᵢ to its largest-magnitude fraction <c>densityᵢ</c>, elect each
    /// coordinate's sign as the sign of Σ wᵢ·τᵢ, then merge only the weighted values that agree with it
    /// (their mean over the agreeing weights when <paramref name="normalize"/>).
    /// </summary>
    public static float[] Ties(float[] @base, IReadOnlyList<float[]> models, IReadOnlyList<float> weights, IReadOnlyList<float> densities, float lambda, bool normalize)
    {
        var deltas = models.Select((m, i) => KeepLargest(Delta(m, @base), densities[i])).ToList();
        return Combine(@base, deltas, weights, lambda, normalize, signConsensus: true);
    }

    /// <summary>
    /// DARE (Yu et al. 2024): drop each value of τᵢ with probability 1 − densityᵢ and rescale the survivors by
    /// 1/densityᵢ, so the expected task vector is unchanged; then add (dare_linear) or merge with TIES' sign
    /// election (dare_ties).
    /// </summary>
    public static float[] Dare(float[] @base, IReadOnlyList<float[]> models, IReadOnlyList<float> weights, IReadOnlyList<float> densities,
        float lambda, bool normalize, bool signConsensus, Rng rng)
    {
        var deltas = models.Select((m, i) => DropAndRescale(Delta(m, @base), densities[i], rng)).ToList();
        return Combine(@base, deltas, weights, lambda, normalize, signConsensus);
    }

    /// <summary>
    /// Spherical interpolation between a and b at t (t = 0 gives a): along the great circle between their
    /// directions, with their norms as they are (as mergekit); nearly parallel tensors are interpolated linearly.
    /// </summary>
    public static float[] Slerp(float[] a, float[] b, float t)
    {
        var result = new float[a.Length];
        float na = TensorPrimitives.Norm(a), nb = TensorPrimitives.Norm(b);
        double dot = na == 0 || nb == 0 ? 1 : Math.Clamp(TensorPrimitives.Dot(a, b) / ((double)na * nb), -1, 1);
        if (Math.Abs(dot) > 0.9995)
        {
            TensorPrimitives.Lerp(a, b, t, result);
            return result;
        }
        double theta = Math.Acos(dot), sin = Math.Sin(theta);
        float s0 = (float)(Math.Sin((1 - t) * theta) / sin), s1 = (float)(Math.Sin(t * theta) / sin);
        TensorPrimitives.Multiply(a, s0, result);
        TensorPrimitives.MultiplyAdd(b, s1, result, result);
        return result;
    }

    /// <summary>The values of <paramref name="delta"/> with magnitude among the largest <paramref name="density"/> fraction; the rest zero.</summary>
    public static float[] KeepLargest(float[] delta, float density)
    {
        int keep = (int)Math.Round(Math.Clamp(density, 0f, 1f) * delta.Length);
        if (keep >= delta.Length) return delta;
        var result = new float[delta.Length];
        if (keep == 0) return result;
        var magnitudes = new float[delta.Length];
        TensorPrimitives.Abs(delta, magnitudes);
        Array.Sort(magnitudes);
        float threshold = magnitudes[delta.Length - keep];
        // everything above the threshold, then values equal to it in index order until `keep` are kept
        int above = 0;
        for (int i = 0; i < delta.Length; i++)
            if (Math.Abs(delta[i]) > threshold) { result[i] = delta[i]; above++; }
        for (int i = 0, ties = keep - above; i < delta.Length && ties > 0; i++)
            if (Math.Abs(delta[i]) == threshold) { result[i] = delta[i]; ties--; }
        return result;
    }

    private static float[] DropAndRescale(float[] delta, float density, Rng rng)
    {
        if (density >= 1) return delta;
        if (density <= 0) return new float[delta.Length];
        float scale = 1 / density;
        for (int i = 0; i < delta.Length; i++) delta[i] = rng.NextFloat() < density ? delta[i] * scale : 0;
        return delta;
    }

    private static float[] Delta(float[] model, float[] @base)
    {
        var d = new float[model.Length];
        TensorPrimitives.Subtract(model, @base, d);
        return d;
    }

    /// <summary>
    /// base + λ · Σ wᵢ·τᵢ over the coordinates whose sign agrees with the elected one (all of them without
    /// <paramref name="signConsensus"/>), divided by the weights that contributed when <paramref name="normalize"/>.
    /// </summary>
    private static float[] Combine(float[] @base, List<float[]> deltas, IReadOnlyList<float> weights, float lambda, bool normalize, bool signConsensus)
    {
        int n = @base.Length;
        var elected = new float[n];
        if (signConsensus)
            for (int m = 0; m < deltas.Count; m++) TensorPrimitives.MultiplyAdd(deltas[m], weights[m], elected, elected);
        var sum = new float[n];
        var divisor = new float[n];
        for (int m = 0; m < deltas.Count; m++)
        {
            var d = deltas[m];
            float w = weights[m];
            for (int i = 0; i < n; i++)
            {
                float v = w * d[i];
                if (signConsensus && (v == 0 || (v > 0) != (elected[i] > 0))) continue;
                sum[i] += v;
                divisor[i] += w;
            }
        }
        var result = new float[n];
        for (int i = 0; i < n; i++)
        {
            float mixed = normalize && divisor[i] != 0 ? sum[i] / divisor[i] : sum[i];
            result[i] = @base[i] + lambda * mixed;
        }
        return result;
    }
}
