using Coldmind.Cost;
using Coldmind.Formats;
using Coldmind.Nn;
using Coldmind.Quantization;
using Coldmind.Runtime;
using Coldmind.Tensors;

namespace Coldmind.Merging;

/// <summary>
/// Scores a small language model written by `coldmind train-lm` (GGUF, bitnet architecture) by its next-character
/// loss on held-out text, as the negative loss (higher is better): validation windows for the search, test windows
/// for the report. Ternary projections are re-ternarized as the trainer's forward pass does, so a merged ternary
/// model is scored as it will run. A budget costs the child from its GGUF as written.
/// </summary>
public sealed class LanguageModelJudge(int[] validation, int[] testSet, int context, int windows, DeviceBudget? budget) : IChildJudge
{
    public string Metric => "loss";

    public static TinyLmConfig ConfigOf(MergeModel model)
    {
        var meta = model.GgufMetadata ?? throw new ColdmindException($"'{model.Name}' is not a language model.");
        GgufValue Get(string key) => meta.FirstOrDefault(kv => kv.Key == key).Value
            ?? throw new ColdmindException($"'{model.Name}' has no '{key}'; only models written by `coldmind train-lm` (bitnet architecture) are scored.");
        if (Get("general.architecture").ToString() != "bitnet")
            throw new ColdmindException($"'{model.Name}' is a {Get("general.architecture")} model; language-model merges are scored on `coldmind train-lm` models (bitnet).");
        bool ternary = model.Tensors.Any(t => t.Name.StartsWith("blk.", StringComparison.Ordinal) && t.StoredAs is GgmlType.TQ1_0 or GgmlType.TQ2_0);
        var activation = meta.FirstOrDefault(kv => kv.Key == ModelConfig.FfnActivationKey).Value?.ToString() == "silu" ? Activation.Silu : Activation.SquaredRelu;
        return new TinyLmConfig((int)((Array)Get("tokenizer.ggml.tokens").Value).Length, (int)Get("bitnet.embedding_length").AsInteger(), (int)Get("bitnet.block_count").AsInteger(),
            (int)Get("bitnet.attention.head_count").AsInteger(), (int)Get("bitnet.attention.head_count_kv").AsInteger(), (int)Get("bitnet.feed_forward_length").AsInteger(),
            ternary, activation, (float)Get("bitnet.rope.freq_base").Value, (float)Get("bitnet.attention.layer_norm_rms_epsilon").Value);
    }

    public Judgement Judge(MergeModel child, bool test = false)
    {
        var model = new TinyLm(ConfigOf(child), new Rng(0));
        model.LoadState(child.Tensors.ToDictionary(t => t.Name, t => Tensor.FromArray(t.Values, t.Shape)));
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
