using System.Diagnostics;
using Coldmind.Cost;
using Coldmind.Data;
using Coldmind.Models;
using Coldmind.Nn;
using Coldmind.Numerics;
using Coldmind.Quantization;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Tensors;

namespace Coldmind.Shrink;

public sealed record ShrinkOptions
{
    public int[] TeacherHidden { get; init; } = [256, 128];
    /// <summary>When set, the teacher is a small CNN with these channels (3×3 convolutions, each pooled by 2) and TeacherHidden[0] hidden units.</summary>
    public int[]? TeacherChannels { get; init; }
    /// <summary>A trained teacher to distil from instead of training one (e.g. imported from ONNX), with its spec.</summary>
    public (Module Model, ClassifierSpec Spec)? Given { get; init; }
    public int[] StudentHidden { get; init; } = [128];
    public int Epochs { get; init; } = 100;
    public int BatchSize { get; init; } = 64;
    public float LearningRate { get; init; } = 2e-3f;
    public float Temperature { get; init; } = 2f;
    public float Alpha { get; init; } = 0.5f;
    /// <summary>Drop training examples whose label the teacher gives less than this probability (0: keep all).</summary>
    public float Curate { get; init; }
    public int Rounds { get; init; } = 3;
    public double PruneRate { get; init; } = 0.5;
    public bool GlobalPruning { get; init; } = true;
    public int RewindStep { get; init; }
    /// <summary>Also train each round's mask from a random re-initialisation (the lottery-ticket control).</summary>
    public bool RandomControl { get; init; }
    public ulong Seed { get; init; }
    /// <summary>The device whose joules per inference the stages estimate (the cost model).</summary>
    public DeviceProfile Device { get; init; } = DeviceProfile.Load("host");
}

/// <summary>
/// What one stage produced, measured on the held-out test set. Calibration: the expected calibration error of the
/// raw softmax and after temperature scaling (T fitted on the validation split), with the reliability diagrams of both.
/// </summary>
public sealed record ShrinkStage(string Name, string Description, float TestAccuracy, float Temperature,
    IReadOnlyList<ReliabilityBin> Reliability, IReadOnlyList<ReliabilityBin> CalibratedReliability,
    long Parameters, long NonZeroParameters, double BitsPerWeight, long Bytes, double LatencyMicroseconds, double JoulesPerInference, double Seconds)
{
    public float CalibrationError => Calibration.ErrorOf(Reliability);
    public float CalibratedError => Calibration.ErrorOf(CalibratedReliability);
}

/// <summary>What `coldmind shrink` returns: the stages, the final model (with its fitted temperature in the metadata), the ticket's rounds and the teacher.</summary>
public sealed record ShrinkResult(IReadOnlyList<ShrinkStage> Stages, CompactClassifier Final, IReadOnlyList<TicketRound> Rounds, Module Teacher, ClassifierSpec TeacherSpec)
{
    /// <summary>Every stage compiled to a compact classifier, by stage name (a CNN teacher is not among them).</summary>
    public IReadOnlyDictionary<string, CompactClassifier> Compiled { get; init; } =
        new Dictionary<string, CompactClassifier>();
}

/// <summary>
/// `coldmind shrink`: teacher → distilled student → lottery ticket → ternary. The teacher is a wide MLP; the
/// student a narrow one trained on the teacher's softened outputs (optionally on the examples the teacher
/// finds plausible only); the ticket is found by iterative magnitude pruning of the student with rewinding,
/// still distilled; the ternary model is the ticket's survivors trained as BitNet b1.58 layers with the masks
/// held. Int8 and int4 rounding of the ticket are measured beside it. Every model is compiled to its
/// inference form (<see cref="CompactClassifier"/>: sparse where pruned, ternary or quantized codes) and measured
/// there: accuracy, calibration, bytes on disk, latency at batch 1, estimated joules.
/// </summary>
public static class ShrinkPipeline
{
    /// <summary>Runs every stage; <paramref name="progress"/> hears each stage by name, and each training step with its loss.</summary>
    public static ShrinkResult Run(DataSplits data, ShrinkOptions o, IProgress<StageProgress>? progress = null)
    {
        if (data.Train.Classes < 2) throw new ColdmindException($"The data has {data.Train.Classes} class; shrinking a classifier needs at least 2.");
        if (data.Train.Count < data.Train.Classes) throw new ColdmindException($"{data.Train.Count} training examples for {data.Train.Classes} classes: too few to learn from.");
        if (data.Test.Count == 0)
            throw new ColdmindException($"{data.Train.Count + data.Validation.Count} examples for {data.Train.Classes} classes leave the test split empty: too few to hold any out and measure on.");
        int inputs = data.Train.FeatureCount, classes = data.Train.Classes;
        var training = new TrainOptions { Epochs = o.Epochs, BatchSize = o.BatchSize, LearningRate = o.LearningRate, Seed = o.Seed };
        var stages = new List<ShrinkStage>();
        var clock = Stopwatch.StartNew();
        void Add(string name, string description, ClassifierModel model, long bytes)
        {
            progress?.Report(new StageProgress($"measuring the {name}", 0, 0));
            stages.Add(Measure(name, description, model, data, bytes, o.Device, clock.Elapsed.TotalSeconds));
            clock.Restart();
        }
        var compiled = new Dictionary<string, CompactClassifier>();
        void AddCompact(string name, string description, CompactClassifier compact)
        {
            compiled[name] = compact;
            Add(name, description, ClassifierModel.Of(compact, name), SavedBytes(compact.Save));
        }

        Module teacher;
        ClassifierSpec teacherSpec;
        if (o.Given is var (given, givenSpec))
        {
            (teacher, teacherSpec) = (given, givenSpec);
            Add("teacher", $"given: {givenSpec.Describe()}", ClassifierModel.Of(teacher, teacherSpec, "teacher"),
                SavedBytes(path => TensorFile.Write(path, teacher.NamedParameters())));
        }
        else if (o.TeacherChannels is { } channels)
        {
            if (data.Train.SampleShape.Length != 3) throw new ColdmindException($"A CNN teacher needs images (channels, height, width); '{data.Train.Name}' has samples of shape [{string.Join(", ", data.Train.SampleShape)}].");
            teacherSpec = ClassifierSpec.ForCnn(data.Train.SampleShape, classes, channels, o.TeacherHidden[0]);
            teacher = teacherSpec.Build(new Rng(o.Seed));
            Trainer.Fit(teacher, data.Train, data.Validation, training, progress.As("teacher"));
            Add("teacher", $"float CNN, channels {string.Join(",", channels)}, hidden {o.TeacherHidden[0]}", ClassifierModel.Of(teacher, teacherSpec, "teacher"),
                SavedBytes(path => TensorFile.Write(path, teacher.NamedParameters())));
        }
        else
        {
            teacherSpec = ClassifierSpec.ForMlp(data.Train.SampleShape, classes, o.TeacherHidden);
            teacher = teacherSpec.Build(new Rng(o.Seed));
            Trainer.Fit(teacher, data.Train, data.Validation, training, progress.As("teacher"));
            AddCompact("teacher", $"float MLP {inputs}-{string.Join("-", o.TeacherHidden)}-{classes}", CompactClassifier.Compile(teacher));
        }

        var train = data.Train;
        var soft = Trainer.Logits(teacher, train);
        if (o.Curate > 0)
        {
            var keep = Enumerable.Range(0, train.Count).Where(i => Probability(soft, i, classes, train.Labels[i]) >= o.Curate).ToArray();
            if (keep.Length < classes) throw new ColdmindException($"--curate {o.Curate} keeps {keep.Length} examples; lower it.");
            train = train.Subset(keep, train.Name + " (curated)");
            soft = Trainer.Logits(teacher, train);
        }
        var curated = data with { Train = train };
        var distill = training with { TeacherLogits = soft, DistillTemperature = o.Temperature, DistillAlpha = o.Alpha };
        var student = new Mlp(inputs, o.StudentHidden, classes, new Rng(o.Seed + 1));
        Trainer.Fit(student, train, data.Validation, distill, progress.As("student (distilled)"));
        string studentShape = $"{inputs}-{string.Join("-", o.StudentHidden)}-{classes}";
        AddCompact("student", $"float MLP {studentShape}, distilled (T {o.Temperature}, α {o.Alpha})" + (o.Curate > 0 ? $", {train.Count}/{data.Train.Count} examples kept" : ""),
            CompactClassifier.Compile(student));

        var (ticket, mask, rounds) = LotteryTicket.Find(rng => new Mlp(inputs, o.StudentHidden, classes, rng), curated, distill,
            new LotteryTicket.Options(o.Rounds, o.PruneRate, o.GlobalPruning, o.RewindStep, RandomControl: o.RandomControl), o.Seed + 1,
            progress: progress);
        var ticketCompact = CompactClassifier.Compile(ticket);
        AddCompact("ticket", $"{mask.Density:P1} of weights left after {o.Rounds} rounds of {o.PruneRate:P0} magnitude pruning, rewound to step {o.RewindStep}", ticketCompact);

        foreach (var scheme in new[] { PtqScheme.Parse("int8/g32"), PtqScheme.Parse("int4/g32") })
            AddCompact($"ticket {scheme.Method.ToString().ToLowerInvariant()}", $"the ticket's weights rounded after training ({scheme.Name}), packed codes, sparse where smaller",
                CompactClassifier.Compile(ticket, schemes: [.. Enumerable.Repeat(scheme, o.StudentHidden.Length + 1)]));

        var ternary = new Mlp(inputs, o.StudentHidden, classes, new Rng(o.Seed + 2), ternary: true);
        ternary.LoadState(ticket.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor), partial: true);
        Trainer.Fit(ternary, train, data.Validation, distill with { Mask = mask.For(ternary) }, progress.As("ternary"));
        var final = CompactClassifier.Compile(ternary);
        AddCompact("ternary", "the ticket's hidden layers as BitNet b1.58 (ternary weights, int8 activations), masks held, distilled; float head", final);
        final = final.WithMetadata(new Provenance { Temperature = stages[^1].Temperature }.ToMetadata());
        return new ShrinkResult(stages, final, rounds, teacher, teacherSpec) { Compiled = compiled };
    }

    /// <summary>Bytes of the file <paramref name="save"/> writes (to a temporary path, deleted after).</summary>
    private static long SavedBytes(Action<string> save)
    {
        string path = Path.Combine(Path.GetTempPath(), $"coldmind-{Guid.NewGuid():N}.safetensors");
        try
        {
            save(path);
            return new FileInfo(path).Length;
        }
        finally { File.Delete(path); }
    }

    private static float Probability(float[] logits, int row, int classes, int label)
    {
        Span<float> p = stackalloc float[classes];
        TensorPrimitives.SoftMax(logits.AsSpan(row * classes, classes), p);
        return p[label];
    }

    /// <summary>
    /// Accuracy and calibration on the test split (raw, and with the temperature fitted on the validation split),
    /// batch-1 latency on this CPU (median of five passes), and the cost model's joules on <paramref name="device"/>.
    /// </summary>
    private static ShrinkStage Measure(string name, string description, ClassifierModel model, DataSplits data, long bytes, DeviceProfile device, double seconds)
    {
        var test = data.Test;
        int classes = test.Classes;
        float temperature = data.Validation.Count > 0 ? Calibration.FitTemperature(model.Logits(data.Validation), data.Validation.Labels, classes) : 1f;
        var logits = model.Logits(test);
        int correct = 0;
        for (int i = 0; i < test.Count; i++)
            if (Sampler.ArgMax(logits.AsSpan(i * classes, classes)) == test.Labels[i]) correct++;
        var raw = Calibration.Reliability(Calibration.Probabilities(logits, classes), test.Labels, classes);
        var scaled = Calibration.Reliability(Calibration.Probabilities(logits, classes, temperature), test.Labels, classes);
        int n = Math.Min(test.Count, 100);
        double latency = Timing.MedianSeconds(() =>
        {
            for (int i = 0; i < n; i++) model.Logits(test.Features.AsSpan(i * test.FeatureCount, test.FeatureCount));
        }) * 1e6 / n;
        long parameters = model.Parameters, nonZeros = model.Compact?.NonZeroParameters ?? parameters;
        return new ShrinkStage(name, description, (float)correct / test.Count, temperature, raw, scaled,
            parameters, nonZeros, 8.0 * bytes / parameters, bytes, latency, CostModel.Estimate(Workload.Of(model), device).Joules, seconds);
    }
}
