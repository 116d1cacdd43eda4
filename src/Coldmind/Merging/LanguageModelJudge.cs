using Coldmind.Cost;
using Coldmind.LmTraining;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Merging;

/// <summary>
/// Scores a small language model written by `coldmind train-lm` (GGUF, bitnet architecture) by its next-character
/// loss on held-out text, as the negative loss (higher is better): validation windows for the search, test windows
/// for the report. Ternary projections are scored as <see cref="MergeModel.Save"/> writes them (kept when they are
/// a parent's scale × trits, ternarized by absmean when merged), so a merged ternary model is scored as it will
/// run. A budget costs the child from its GGUF as written.
/// </summary>
public sealed class LanguageModelJudge(int[] validation, int[] testSet, int context, int windows, DeviceBudget? budget) : IChildJudge
{
    public string Metric => "loss";

    public static TinyLmConfig ConfigOf(MergeModel model) =>
        TinyLmExport.ConfigOf(model.GgufMetadata ?? throw new ColdmindException($"'{model.Name}' is not a language model."),
            model.Tensors.Select(t => (t.Name, t.StoredAs)), $"'{model.Name}'");

    public Judgement Judge(MergeModel child, bool test = false)
    {
        var model = new TinyLm(ConfigOf(child), new Rng(0));
        // ternary projections as the child will be written (MergeModel.Save), loaded so that the forward pass computes exactly those
        model.LoadState(child.Tensors.ToDictionary(t => t.Name, t => Tensor.FromArray(TinyLmExport.IsTernary(t.StoredAs) ? BitNetQuantizer.LatentOf(t.Values) : t.Values, t.Shape)));
        double loss = LmTrainer.ValidationLoss(model, test ? testSet : validation, context, windows);
        long bytes = child.Tensors.Sum(t => GgmlTypes.Traits(t.StoredAs).ByteCount(t.Values.Length));
        if (budget == null) return new Judgement(-loss, child.Layers.Count, bytes, null, null, 0, null);
        string path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"coldmind-judge-{Environment.ProcessId}-{Guid.NewGuid():N}.gguf");
        try
        {
            child.Save(path, "{}");
            var (cost, violation, reason) = budget.Judge(Workload.FromGguf(path, context));
            return new Judgement(-loss, child.Layers.Count, bytes, cost.Joules, cost.Seconds, violation, reason);
        }
        finally { System.IO.File.Delete(path); }
    }
}
