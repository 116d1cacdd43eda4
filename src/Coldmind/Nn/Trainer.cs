using System.Diagnostics;
using Coldmind.Numerics;
using Coldmind.Data;
using Coldmind.Nn.Optim;
using Coldmind.Tensors;

namespace Coldmind.Nn;

public sealed record TrainOptions
{
    public int Epochs { get; init; } = 10;
    public int BatchSize { get; init; } = 128;
    public float LearningRate { get; init; } = 1e-3f;
    /// <summary>"adamw" or "sgd" (with momentum).</summary>
    public string Optimizer { get; init; } = "adamw";
    public float WeightDecay { get; init; } = 1e-4f;
    public float Momentum { get; init; } = 0.9f;
    /// <summary>Warm-up as a fraction of all steps, before the cosine decay.</summary>
    public float WarmupFraction { get; init; } = 0.02f;
    /// <summary>Global gradient-norm clip; 0 turns clipping off.</summary>
    public float ClipNorm { get; init; }
    public float LabelSmoothing { get; init; }
    /// <summary>
    /// Fraction of all steps over which quantized layers (<see cref="BitLinear"/>) go from float (λ = 0) to
    /// fully quantized (λ = 1); 0 trains quantized from the first step.
    /// </summary>
    public float QuantizationWarmup { get; init; }
    public ulong Seed { get; init; }
    /// <summary>
    /// Distillation: the teacher's logits for every training example (count × classes). The loss becomes
    /// α · T² · KL(softmax(teacher/T) ‖ softmax(student/T)) + (1 − α) · cross-entropy on the labels (Hinton et al. 2015).
    /// </summary>
    public float[]? TeacherLogits { get; init; }
    public float DistillTemperature { get; init; } = 4f;
    public float DistillAlpha { get; init; } = 0.7f;
    /// <summary>Weights kept at zero after every step (lottery-ticket masks); null trains every weight.</summary>
    public PruningMask? Mask { get; init; }
}

public sealed record EpochReport(int Epoch, float TrainLoss, float TrainAccuracy, float ValidationAccuracy, double Seconds);

public sealed record TrainResult(IReadOnlyList<EpochReport> Epochs, double TrainSeconds);

/// <summary>Mini-batch training of a classifier with cross-entropy, a cosine schedule and seeded shuffling.</summary>
public static class Trainer
{
    /// <summary>
    /// Trains <paramref name="model"/>; <paramref name="progress"/> hears every step with its loss (stage "train"),
    /// <paramref name="onEpoch"/> every epoch's report, and <paramref name="afterStep"/> the step count after each step
    /// (a hook for callers that act at a step, such as rewinding).
    /// </summary>
    public static TrainResult Fit(Module model, Dataset train, Dataset? validation, TrainOptions o,
        IProgress<StageProgress>? progress = null, Action<EpochReport>? onEpoch = null, Action<int>? afterStep = null)
    {
        if (o.Epochs < 1) throw new ColdmindException($"--epochs must be at least 1, got {o.Epochs}.");
        if (o.BatchSize < 1) throw new ColdmindException($"--batch must be at least 1, got {o.BatchSize}.");
        if (!(o.LearningRate > 0)) throw new ColdmindException($"--lr must be positive, got {o.LearningRate}.");
        if (o.QuantizationWarmup is < 0 or > 1) throw new ColdmindException($"--quant-warmup must be a fraction in [0, 1], got {o.QuantizationWarmup}.");
        if (o.TeacherLogits != null && o.TeacherLogits.Length != train.Count * train.Classes)
            throw new ColdmindException($"Teacher logits for {o.TeacherLogits.Length / Math.Max(1, train.Classes)} examples, the training set has {train.Count}.");
        if (o.DistillAlpha is < 0 or > 1 || !(o.DistillTemperature > 0))
            throw new ColdmindException($"Distillation needs α in [0, 1] and T > 0, got α = {o.DistillAlpha}, T = {o.DistillTemperature}.");
        o.Mask?.Apply();
        var parameters = model.Parameters().ToList();
        Optimizer opt = o.Optimizer.ToLowerInvariant() switch
        {
            "adamw" or "adam" => new AdamW(parameters, o.LearningRate, weightDecay: o.WeightDecay),
            "sgd" => new Sgd(parameters, o.LearningRate, o.Momentum, o.WeightDecay, nesterov: true),
            _ => throw new ColdmindException($"Unknown optimizer '{o.Optimizer}'; use adamw or sgd."),
        };
        int stepsPerEpoch = (train.Count + o.BatchSize - 1) / o.BatchSize, total = stepsPerEpoch * o.Epochs;
        var schedule = new CosineSchedule(o.LearningRate, total, (int)(o.WarmupFraction * total));
        var shuffle = new Rng(o.Seed ^ 0x5EED_BA7C);
        var quantized = model.Modules().OfType<BitLinear>().ToArray();
        int quantWarmup = (int)(o.QuantizationWarmup * total);
        var reports = new List<EpochReport>();
        var all = Stopwatch.StartNew();
        int step = 0;
        for (int epoch = 1; epoch <= o.Epochs; epoch++)
        {
            var clock = Stopwatch.StartNew();
            model.Train();
            double lossSum = 0;
            int correct = 0;
            foreach (var batch in Batches.Shuffled(train.Count, o.BatchSize, shuffle))
            {
                opt.LearningRate = schedule.At(step);
                foreach (var layer in quantized) layer.Lambda = quantWarmup > 0 ? Math.Min(1f, (float)step / quantWarmup) : 1f;
                var labels = train.LabelsAt(batch);
                var logits = model.Forward(train.Inputs(batch));
                var loss = Tensor.CrossEntropy(logits, labels, o.LabelSmoothing);
                if (o.TeacherLogits is { } teacher)
                {
                    int c = train.Classes;
                    var soft = new float[batch.Length * c];
                    for (int i = 0; i < batch.Length; i++) teacher.AsSpan(batch[i] * c, c).CopyTo(soft.AsSpan(i * c, c));
                    loss = Tensor.KlDivergence(logits, Tensor.FromArray(soft, batch.Length, c), o.DistillTemperature) * o.DistillAlpha + loss * (1 - o.DistillAlpha);
                }
                float value = loss.Item();
                if (!float.IsFinite(value))
                    throw new ColdmindException($"Training diverged: the loss became {value} at epoch {epoch}, step {step + 1} (learning rate {opt.LearningRate:G3}). Try a smaller --lr. No model was written.");
                lossSum += value * batch.Length;
                correct += CountCorrect(logits, labels);
                opt.ZeroGrad();
                loss.Backward();
                if (o.ClipNorm > 0) opt.ClipGradNorm(o.ClipNorm);
                opt.Step();
                o.Mask?.Apply();
                step++;
                afterStep?.Invoke(step);
                progress?.Report(new StageProgress("train", step, total, "loss", value));
            }
            float valAcc = validation is { Count: > 0 } ? Accuracy(model, validation) : float.NaN;
            var report = new EpochReport(epoch, (float)(lossSum / train.Count), (float)correct / train.Count, valAcc, clock.Elapsed.TotalSeconds);
            reports.Add(report);
            onEpoch?.Invoke(report);
        }
        foreach (var layer in quantized) layer.Lambda = 1f; // what a reloaded checkpoint runs with
        model.Eval();
        return new TrainResult(reports, all.Elapsed.TotalSeconds);
    }

    /// <summary>Logits (count, classes) for every example, in evaluation mode without recording a graph.</summary>
    public static float[] Logits(Module model, Dataset data, int batchSize = 500)
    {
        bool was = model.Training;
        model.Eval();
        using var _ = Tensor.NoGrad();
        var result = new float[data.Count * data.Classes];
        foreach (var batch in Batches.InOrder(data.Count, batchSize))
            model.Forward(data.Inputs(batch)).CopyStridedTo(result.AsSpan(batch[0] * data.Classes, batch.Length * data.Classes));
        model.Train(was);
        return result;
    }

    public static float Accuracy(Module model, Dataset data)
    {
        var logits = Logits(model, data);
        int correct = 0, c = data.Classes;
        for (int i = 0; i < data.Count; i++)
            if (ArgMax(logits.AsSpan(i * c, c)) == data.Labels[i]) correct++;
        return data.Count == 0 ? float.NaN : (float)correct / data.Count;
    }

    private static int CountCorrect(Tensor logits, int[] labels)
    {
        int c = logits.Shape[^1], correct = 0;
        var values = logits.Span;
        for (int i = 0; i < labels.Length; i++)
            if (ArgMax(values.Slice(i * c, c)) == labels[i]) correct++;
        return correct;
    }

    public static int ArgMax(ReadOnlySpan<float> xs) => TensorPrimitives.IndexOfMax(xs);
}
