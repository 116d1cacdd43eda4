using Coldmind.Data;
using Coldmind.Tensors;

namespace Coldmind.Swarm;

/// <summary>Settings of a two-task sequence: epochs per task, SGD, and the two remedies against forgetting.</summary>
public sealed record ContinualOptions(int Epochs = 2, int BatchSize = 32, float LearningRate = 0.05f, float EwcStrength = 100f, int ReplayExamples = 500,
    int FisherExamples = 500, ulong Seed = 0)
{
    public void Validate()
    {
        if (Epochs < 1 || BatchSize < 1 || !(LearningRate > 0)) throw new ColdmindException("--epochs and --batch must be at least 1 and --lr positive.");
        if (!(EwcStrength >= 0) || ReplayExamples < 0 || FisherExamples < 1) throw new ColdmindException("--ewc and --replay must not be negative, --fisher-examples at least 1.");
    }
}

/// <summary>Test accuracy on the first task after it was learnt and after the second, on the second, and on both.</summary>
public sealed record ContinualResult(string Method, float FirstBefore, float FirstAfter, float Second, float Both)
{
    public float Forgetting => FirstBefore - FirstAfter;
}

/// <summary>
/// Learning a second task on the device without forgetting the first (class-incremental: one head for all classes).
/// After the first task the device keeps the diagonal Fisher of its weights there and a reservoir sample of its
/// examples; while it learns the second task, EWC (Kirkpatrick et al. 2017) pulls each weight back in proportion to
/// its Fisher information, and replay mixes a batch of remembered examples into every step.
/// </summary>
public static class ContinualLearning
{
    /// <summary>The first task learnt once, then the second task four ways: plain fine-tuning, EWC, replay, EWC with replay.</summary>
    public static IReadOnlyList<ContinualResult> Run(LocalLearner learner, Dataset train, int[] first, int[] second, Dataset test, ISet<int> firstClasses, ContinualOptions o,
        Action<string>? stage = null)
    {
        o.Validate();
        if (first.Length == 0 || second.Length == 0) throw new ColdmindException("Each task needs training examples.");
        var testFirst = test.WithLabels(firstClasses.Contains);
        var testSecond = test.WithLabels(c => !firstClasses.Contains(c));
        var rng = new Rng(o.Seed ^ 0xC0_471_A1);

        stage?.Invoke("first task");
        var afterFirst = learner.Initial();
        for (int e = 0; e < o.Epochs; e++) learner.TrainOn(afterFirst, train, Batches(first, o.BatchSize, rng), o.LearningRate);
        var reservoir = Reservoir(first, o.ReplayExamples, rng);
        float firstBefore = learner.Accuracy(afterFirst, testFirst);
        stage?.Invoke("Fisher information");
        var sample = first.ToArray();
        rng.Shuffle(sample.AsSpan());
        var fisher = learner.Fisher(afterFirst, train, sample.AsSpan(0, Math.Min(o.FisherExamples, sample.Length)));

        var results = new List<ContinualResult>();
        foreach (var (name, ewc, replay) in new[] { ("fine-tuning", false, false), ("EWC", true, false), ("replay", false, true), ("EWC + replay", true, true) })
        {
            stage?.Invoke(name);
            var w = (float[])afterFirst.Clone();
            var order = new Rng(o.Seed ^ 0x5EC0_11D); // the same batches for every method
            var penalty = ewc ? new Penalty(afterFirst, o.EwcStrength, fisher) : null;
            for (int e = 0; e < o.Epochs; e++)
            {
                var batches = Batches(second, o.BatchSize, order);
                learner.TrainOn(w, train, replay && reservoir.Length > 0 ? LocalLearner.Replayed(batches, reservoir, order) : batches, o.LearningRate, penalty);
            }
            results.Add(new ContinualResult(name, firstBefore, learner.Accuracy(w, testFirst), learner.Accuracy(w, testSecond), learner.Accuracy(w, test)));
        }
        return results;
    }

    /// <summary>
    /// Reservoir sampling (<see cref="DeviceMemory.ReservoirSlot"/>) over the task's examples as a stream: a device
    /// that cannot keep its data keeps <paramref name="size"/> of it, each example with the same probability.
    /// </summary>
    private static int[] Reservoir(int[] stream, int size, Rng rng)
    {
        var reservoir = new List<int>(Math.Min(size, stream.Length));
        for (int seen = 0; seen < stream.Length; seen++)
        {
            int slot = DeviceMemory.ReservoirSlot(reservoir.Count, seen + 1, size, rng);
            if (slot == reservoir.Count) reservoir.Add(stream[seen]);
            else if (slot >= 0) reservoir[slot] = stream[seen];
        }
        return [.. reservoir];
    }

    private static IEnumerable<int[]> Batches(int[] examples, int size, Rng rng)
    {
        var order = examples.ToArray();
        rng.Shuffle(order.AsSpan());
        for (int i = 0; i < order.Length; i += size) yield return order[i..Math.Min(order.Length, i + size)];
    }
}
