using Coldmind.Cost;
using Coldmind.Data;
using Coldmind.Nn;
using Coldmind.Runtime.Classifier;
using Coldmind.Tensors;

namespace Coldmind.Merging;

/// <summary>
/// What a child costs on the target device and whether that is within <see cref="Limits"/>: joules and seconds per
/// inference from the cost model, bytes of weights, and (with a sustained rate) the modal's verdict on
/// throttling, overheating and battery.
/// </summary>
public sealed record DeviceBudget(DeviceProfile Device, Budget Limits, ModalLoad? Thermal = null)
{
    public bool Constrains => !Limits.IsEmpty || Thermal != null;

    /// <summary>The child's cost, and by how much it overshoots the budget (0 when within: the sum of relative excesses).</summary>
    public (CostEstimate Cost, double Violation, string? Reason) Judge(Workload work)
    {
        var cost = CostModel.Estimate(work, Device);
        double violation = Limits.Violation(work.WeightBytes, cost.Joules, cost.Seconds);
        var reasons = new List<string>();
        if (violation > 0)
            reasons.Add($"{work.WeightBytes:N0} bytes, {cost.Joules * 1e6:F3} µJ, {cost.Seconds * 1e6:F1} µs against {Limits.Describe()}");
        if (Thermal is { } load)
        {
            var verdict = Modal.Simulate(work, Device, load, samples: 400);
            if (!verdict.Passes)
            {
                violation += Math.Max(0.01, 1 - verdict.SustainedRate / load.MeanRate);
                reasons.Add(verdict.Reason);
            }
        }
        return (cost, violation, reasons.Count == 0 ? null : string.Join("; ", reasons));
    }
}

/// <summary>A child's score: the task metric (higher is better) on held-out data, its size and cost, and whether it fits the device.</summary>
public sealed record Judgement(double Score, int Layers, long Bytes, double? Joules, double? Seconds, double Violation, string? Reason)
{
    public bool Feasible => Violation == 0;

    /// <summary>Orders children: every feasible one before every infeasible one, then by score, or by how little the budget is exceeded.</summary>
    public static int Compare(Judgement a, Judgement b) =>
        a.Feasible != b.Feasible ? (a.Feasible ? 1 : -1)
        : a.Feasible ? a.Score.CompareTo(b.Score) : b.Violation.CompareTo(a.Violation);
}

/// <summary>Scores a merged model: the task metric on held-out data, and its cost on a device.</summary>
public interface IChildJudge
{
    /// <summary>What the score measures, e.g. "accuracy".</summary>
    string Metric { get; }

    Judgement Judge(MergeModel child, bool test = false);
}

/// <summary>
/// Scores a classifier child by its accuracy on the validation split (the search's fitness) or, with test, on
/// the test split (the reported result, never seen by the search); costs it as its compiled form runs.
/// </summary>
public sealed class ClassifierJudge(Dataset validation, Dataset testSet, DeviceBudget? budget) : IChildJudge
{
    public string Metric => "accuracy";

    public Judgement Judge(MergeModel child, bool test = false)
    {
        var net = child.ToClassifier();
        var spec = child.Spec!;
        var data = test ? testSet : validation;
        if (data.FeatureCount != Shape.Numel(spec.InputShape) || data.Classes != spec.Classes)
            throw new ColdmindException($"'{child.Name}' ({spec.Describe()}) does not fit '{data.Name}' ({Shape.Format(data.SampleShape)}, {data.Classes} classes).");
        double accuracy = Trainer.Accuracy(net, data);
        var work = Workload.Of(ClassifierModel.Of(net, spec, child.Name));
        if (budget == null) return new Judgement(accuracy, child.Layers.Count, work.WeightBytes, null, null, 0, null);
        var (cost, violation, reason) = budget.Judge(work);
        return new Judgement(accuracy, child.Layers.Count, work.WeightBytes, cost.Joules, cost.Seconds, violation, reason);
    }
}
