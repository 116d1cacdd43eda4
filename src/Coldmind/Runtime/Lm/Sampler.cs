using Coldmind.Tensors;

namespace Coldmind.Runtime.Lm;

/// <summary>
/// How the next token is chosen. Temperature 0 is greedy (argmax). Otherwise, in llama.cpp's order:
/// repetition penalty on the last <see cref="RepeatWindow"/> tokens, top-k, top-p (nucleus), temperature,
/// then a draw from the seeded generator, so the same seed gives the same text.
/// </summary>
/// <remarks>
/// <see cref="FrequencyPenalty"/> and <see cref="PresencePenalty"/> are OpenAI's: each token of the window is
/// lowered by count × frequency + presence, after the repetition penalty, as llama.cpp's penalties sampler does.
/// </remarks>
public sealed record SamplerOptions(float Temperature = 0.8f, int TopK = 40, float TopP = 0.95f, float RepeatPenalty = 1.1f, int RepeatWindow = 64, ulong Seed = 0,
    float FrequencyPenalty = 0f, float PresencePenalty = 0f)
{
    public void Validate()
    {
        if (!(Temperature >= 0)) throw new ColdmindException($"--temp must be 0 (greedy) or positive, got {Temperature}.");
        if (TopK < 0) throw new ColdmindException($"--top-k must be 0 (off) or positive, got {TopK}.");
        if (!(TopP > 0 && TopP <= 1)) throw new ColdmindException($"--top-p must be in (0, 1], got {TopP}.");
        if (!(RepeatPenalty >= 1)) throw new ColdmindException($"--repeat-penalty must be at least 1 (1 = off), got {RepeatPenalty}.");
        if (RepeatWindow < 0) throw new ColdmindException($"--repeat-last-n must not be negative, got {RepeatWindow}.");
        if (!(Math.Abs(FrequencyPenalty) <= 2)) throw new ColdmindException($"frequency_penalty must be in [-2, 2], got {FrequencyPenalty}.");
        if (!(Math.Abs(PresencePenalty) <= 2)) throw new ColdmindException($"presence_penalty must be in [-2, 2], got {PresencePenalty}.");
    }
}

public sealed class Sampler
{
    private readonly SamplerOptions _options;
    private readonly Rng _rng;

    public Sampler(SamplerOptions options)
    {
        options.Validate();
        _options = options;
        _rng = new Rng(options.Seed);
    }

    /// <summary>The next token after <paramref name="history"/> (prompt and generated tokens so far).</summary>
    public int Sample(float[] logits, IReadOnlyList<int> history)
    {
        var o = _options;
        var scores = (float[])logits.Clone();
        if (o.RepeatPenalty != 1f)
            foreach (int t in history.Skip(Math.Max(0, history.Count - o.RepeatWindow)).Distinct())
                scores[t] = scores[t] > 0 ? scores[t] / o.RepeatPenalty : scores[t] * o.RepeatPenalty; // as llama.cpp / CTRL
        if (o.FrequencyPenalty != 0 || o.PresencePenalty != 0)
            foreach (var g in history.Skip(Math.Max(0, history.Count - o.RepeatWindow)).GroupBy(t => t))
                scores[g.Key] -= g.Count() * o.FrequencyPenalty + o.PresencePenalty;
        if (o.Temperature == 0) return ArgMax(scores);

        // candidates by score, highest first (ties: lower id first); top-k keeps k of them
        int[] order = o.TopK > 0 && o.TopK < scores.Length ? TopK(scores, o.TopK) : Enumerable.Range(0, scores.Length).ToArray();
        Array.Sort(order, (a, b) => scores[b].CompareTo(scores[a]) is var c && c != 0 ? c : a.CompareTo(b));
        int keep = order.Length;
        // top-p: the smallest prefix whose probability (at temperature 1) reaches p
        var probabilities = Softmax(order, keep, scores, 1f);
        double cumulative = 0;
        for (int i = 0; i < keep; i++)
        {
            cumulative += probabilities[i];
            if (cumulative >= o.TopP) { keep = i + 1; break; }
        }
        probabilities = Softmax(order, keep, scores, o.Temperature);
        double u = _rng.NextDouble(), sum = 0;
        for (int i = 0; i < keep; i++)
        {
            sum += probabilities[i];
            if (u < sum) return order[i];
        }
        return order[keep - 1];
    }

    /// <summary>The ids of the k highest scores (ties: lower id), in no order: one pass with a k-element heap, not a sort of the vocabulary.</summary>
    private static int[] TopK(float[] scores, int k)
    {
        var heap = new PriorityQueue<int, (float Score, int NegId)>(k + 1);
        for (int i = 0; i < scores.Length; i++)
        {
            heap.Enqueue(i, (scores[i], -i));
            if (heap.Count > k) heap.Dequeue(); // drops the lowest (score, then the higher id)
        }
        var ids = new int[k];
        for (int i = 0; i < k; i++) ids[i] = heap.Dequeue();
        return ids;
    }

    public static int ArgMax(ReadOnlySpan<float> scores)
    {
        int best = 0;
        for (int i = 1; i < scores.Length; i++) if (scores[i] > scores[best]) best = i;
        return best;
    }

    private static double[] Softmax(int[] order, int count, float[] scores, float temperature)
    {
        var p = new double[count];
        double max = scores[order[0]] / temperature, total = 0;
        for (int i = 0; i < count; i++) total += p[i] = Math.Exp(scores[order[i]] / temperature - max);
        for (int i = 0; i < count; i++) p[i] /= total;
        return p;
    }
}
