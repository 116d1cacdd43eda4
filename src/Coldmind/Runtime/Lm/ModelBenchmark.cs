using System.Diagnostics;
using Coldmind.Numerics;
using Coldmind.Tensors;

namespace Coldmind.Runtime.Lm;

/// <summary>
/// llama-bench's two tests on a model: pp (one batch of <c>prompt</c> random tokens on a fresh context) and tg
/// (<c>generate</c> single-token steps on a fresh context), in tokens/s, each the median of several repetitions
/// after a warm-up that pages the weights in.
/// </summary>
public static class ModelBenchmark
{
    public static (double? Prompt, double? Generation) Measure(LanguageModel model, int prompt, int generate, int repetitions,
        IProgress<StageProgress>? progress = null)
    {
        if (prompt < 0 || generate < 0 || prompt + generate == 0) throw new ColdmindException($"-p and -n must not be negative and not both 0; got {prompt} and {generate}.");
        if (repetitions < 1) throw new ColdmindException($"-r must be at least 1, got {repetitions}.");
        if (Math.Max(prompt, generate + 1) > model.Config.ContextLength)
            throw new ColdmindException($"The model's context holds {model.Config.ContextLength} tokens; -p {prompt} / -n {generate} do not fit.");
        var rng = new Rng(1);
        int[] Tokens(int count) => Enumerable.Range(0, count).Select(_ => rng.NextInt(model.Config.VocabSize)).ToArray();
        var session = model.CreateSession(Math.Max(prompt, generate + 1));
        session.Evaluate(Tokens(Math.Clamp(prompt, 1, 8)));
        double? pp = null, tg = null;
        int promptRuns = 0, generationRuns = 0;
        if (prompt > 0)
            pp = prompt / Timing.Median(Enumerable.Range(0, repetitions).Select(_ =>
            {
                session.Reset();
                var tokens = Tokens(prompt);
                var clock = Stopwatch.StartNew();
                session.Evaluate(tokens);
                progress?.Report(new StageProgress("prompt", ++promptRuns, repetitions));
                return clock.Elapsed.TotalSeconds;
            }).ToArray());
        if (generate > 0)
            tg = generate / Timing.Median(Enumerable.Range(0, repetitions).Select(_ =>
            {
                session.Reset();
                var tokens = Tokens(generate);
                var clock = Stopwatch.StartNew();
                foreach (int t in tokens) session.Evaluate([t]);
                progress?.Report(new StageProgress("generation", ++generationRuns, repetitions));
                return clock.Elapsed.TotalSeconds;
            }).ToArray());
        return (pp, tg);
    }
}
