using System.Diagnostics;
using Coldmind.Nn.Optim;
using Coldmind.Tensors;

namespace Coldmind.LmTraining;

public sealed record LmTrainOptions(int Steps = 600, int Batch = 16, int Context = 128, float LearningRate = 2e-3f, float WeightDecay = 0.01f,
    float Clip = 1f, int EvalEvery = 100, int EvalWindows = 64, ulong Seed = 0)
{
    public void Validate()
    {
        if (Steps < 1 || Batch < 1 || Context < 2) throw new ColdmindException($"--steps, --batch must be positive and --context at least 2; got {Steps}, {Batch}, {Context}.");
        if (!(LearningRate > 0)) throw new ColdmindException($"--lr must be positive, got {LearningRate}.");
    }
}

/// <summary>Training loss at a step, and the validation loss where it was measured (nats per token).</summary>
public sealed record LmStep(int Step, float TrainLoss, float? ValidationLoss, double Seconds);

/// <summary>
/// Next-token training of a <see cref="TinyLm"/> on a token stream: random windows of Context + 1 tokens,
/// cross-entropy on every position, AdamW with a cosine schedule (5 % warm-up) and gradient clipping.
/// Validation loss is the mean over fixed, evenly spaced windows of the held-out tokens, so two models
/// trained the same steps are compared on the same text.
/// </summary>
public static class LmTrainer
{
    public static IReadOnlyList<LmStep> Train(TinyLm model, int[] train, int[] validation, LmTrainOptions o, Action<LmStep>? onStep = null)
    {
        o.Validate();
        if (train.Length <= o.Context + 1) throw new ColdmindException($"The training text has {train.Length} tokens; a window needs {o.Context + 1}.");
        var rng = new Rng(o.Seed);
        var parameters = model.Parameters().ToArray();
        var optimizer = new AdamW(parameters, o.LearningRate, weightDecay: o.WeightDecay);
        var schedule = new CosineSchedule(o.LearningRate, o.Steps, Math.Max(1, o.Steps / 20), 0.1f);
        var steps = new List<LmStep>();
        var clock = Stopwatch.StartNew();
        for (int step = 0; step < o.Steps; step++)
        {
            var (inputs, targets) = Windows(train, o.Batch, o.Context, _ => rng.NextInt(train.Length - o.Context - 1));
            optimizer.LearningRate = schedule.At(step);
            var loss = Tensor.CrossEntropy(model.Logits(inputs, o.Batch, o.Context), targets);
            float value = loss.ToArray()[0];
            if (!float.IsFinite(value)) throw new ColdmindException($"Training diverged at step {step} (loss {value}); lower --lr.");
            optimizer.ZeroGrad();
            loss.Backward();
            optimizer.ClipGradNorm(o.Clip);
            optimizer.Step();
            bool evaluate = (step + 1) % o.EvalEvery == 0 || step == o.Steps - 1;
            var record = new LmStep(step + 1, value, evaluate ? ValidationLoss(model, validation, o.Context, o.EvalWindows) : null, clock.Elapsed.TotalSeconds);
            steps.Add(record);
            onStep?.Invoke(record);
        }
        return steps;
    }

    /// <summary>Mean next-token cross-entropy over <paramref name="windows"/> evenly spaced windows of the text.</summary>
    public static float ValidationLoss(TinyLm model, int[] tokens, int context, int windows)
    {
        if (tokens.Length <= context + 1) throw new ColdmindException($"The validation text has {tokens.Length} tokens; a window needs {context + 1}.");
        int span = tokens.Length - context - 1;
        windows = Math.Min(windows, span + 1);
        using var _ = Tensor.NoGrad();
        double total = 0;
        const int Batch = 8;
        for (int w0 = 0; w0 < windows; w0 += Batch)
        {
            int n = Math.Min(Batch, windows - w0);
            var (inputs, targets) = Windows(tokens, n, context, i => (int)((long)(w0 + i) * span / Math.Max(1, windows - 1)));
            total += Tensor.CrossEntropy(model.Logits(inputs, n, context), targets).ToArray()[0] * n;
        }
        return (float)(total / windows);
    }

    private static (int[] Inputs, int[] Targets) Windows(int[] tokens, int batch, int context, Func<int, int> start)
    {
        var inputs = new int[batch * context];
        var targets = new int[batch * context];
        for (int b = 0; b < batch; b++)
        {
            int s = start(b);
            Array.Copy(tokens, s, inputs, b * context, context);
            Array.Copy(tokens, s + 1, targets, b * context, context);
        }
        return (inputs, targets);
    }
}
