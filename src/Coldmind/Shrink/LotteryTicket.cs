using Coldmind.Numerics;
using Coldmind.Data;
using Coldmind.Nn;
using Coldmind.Tensors;

namespace Coldmind.Shrink;

/// <summary>One round of iterative magnitude pruning: the density reached and the test accuracy of the ticket (and of a random re-initialisation with the same mask).</summary>
public sealed record TicketRound(int Round, double Density, float TestAccuracy, float? RandomReinitAccuracy, double Seconds);

/// <summary>
/// The lottery ticket hypothesis's procedure (Frankle and Carbin 2019; with rewinding, Frankle et al. 2020):
/// train; prune the smallest weights; reset the survivors to their values at step k (k = 0: the original
/// initialisation) and train again; repeat. The control trains the same masks from a fresh random
/// initialisation: a winning ticket beats it.
/// </summary>
public static class LotteryTicket
{
    public sealed record Options(int Rounds = 5, double Rate = 0.2, bool Global = false, int RewindStep = 0, bool RandomControl = false);

    public static (Module Model, PruningMask Mask, IReadOnlyList<TicketRound> Rounds) Find(
        Func<Rng, Module> build, DataSplits data, TrainOptions training, Options o, ulong seed, Action<TicketRound>? onRound = null,
        IProgress<StageProgress>? progress = null)
    {
        if (o.Rounds < 0) throw new ColdmindException($"--rounds must not be negative, got {o.Rounds}.");
        if (o.RewindStep < 0) throw new ColdmindException($"--rewind must not be negative, got {o.RewindStep}.");
        var model = build(new Rng(seed));
        var rewind = Snapshot(model);
        var mask = PruningMask.Dense(model);
        var rounds = new List<TicketRound>();
        for (int round = 0; round <= o.Rounds; round++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            if (round > 0)
            {
                mask = mask.Prune(o.Rate, o.Global);
                Restore(model, rewind);
            }
            Trainer.Fit(model, data.Train, data.Validation, training with { Mask = mask, Seed = training.Seed + (ulong)round },
                progress.As($"ticket round {round}/{o.Rounds}"),
                afterStep: step =>
                {
                    if (round == 0 && step == o.RewindStep && step > 0) rewind = Snapshot(model);
                });
            float accuracy = Trainer.Accuracy(model, data.Test);
            float? control = null;
            if (o.RandomControl && round > 0)
            {
                var fresh = build(new Rng(seed ^ (0xC0FFEEUL + (ulong)round)));
                Trainer.Fit(fresh, data.Train, data.Validation, training with { Mask = mask.For(fresh), Seed = training.Seed + (ulong)round },
                    progress.As($"random re-init {round}/{o.Rounds}"));
                control = Trainer.Accuracy(fresh, data.Test);
            }
            var record = new TicketRound(round, mask.Density, accuracy, control, clock.Elapsed.TotalSeconds);
            rounds.Add(record);
            onRound?.Invoke(record);
        }
        return (model, mask, rounds);
    }

    private static Dictionary<string, float[]> Snapshot(Module model) => model.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor.ToArray());

    private static void Restore(Module model, Dictionary<string, float[]> values)
    {
        foreach (var (name, p) in model.NamedParameters()) values[name].CopyTo(p.Span);
    }
}
