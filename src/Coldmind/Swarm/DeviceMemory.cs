using System.Globalization;
using Coldmind.Data;
using Coldmind.Tensors;

namespace Coldmind.Swarm;

/// <summary>
/// How a device guards what it learnt against new data: <paramref name="Replay"/> remembered examples mixed into
/// every local step, and EWC of strength <paramref name="Ewc"/> (the Fisher is normalised to mean 1).
/// </summary>
public sealed record MemoryOptions(int Replay = 0, float Ewc = 0)
{
    /// <summary>Examples kept for the Fisher information when EWC runs without replay.</summary>
    public const int FisherExamples = 200;

    public bool Enabled => Replay > 0 || Ewc > 0;

    /// <summary>The reservoir's size: the replayed examples, and enough to estimate the Fisher on.</summary>
    public int Capacity => Math.Max(Replay, Ewc > 0 ? FisherExamples : 0);

    public void Validate()
    {
        if (Replay < 0) throw new ColdmindException($"--replay must not be negative, got {Replay}.");
        if (!(Ewc >= 0 && float.IsFinite(Ewc))) throw new ColdmindException($"--ewc must be a non-negative number, got {Ewc}.");
    }
}

/// <summary>
/// What a device keeps of data it may no longer hold, so that learning from new data does not erase the old
/// (the continual-learning layer of a swarm node; <see cref="ContinualLearning"/> measures the same two remedies
/// on one device):
/// <list type="bullet">
/// <item>a reservoir (Vitter's algorithm R) over every example the device has trained on, each tagged with the
/// generation of its data — a generation begins each time the node starts on data it did not hold before;</item>
/// <item>when a generation begins, an EWC anchor (the model the node answered with) and the diagonal Fisher of that
/// model on the remembered examples, which by then are all of earlier data, so one Fisher covers every earlier task.</item>
/// </list>
/// Local steps then replay remembered examples of earlier generations beside every batch of the current data, and
/// pull each weight back towards the anchor in proportion to its Fisher information.
/// </summary>
public sealed class DeviceMemory
{
    private const string Prefix = "memory_";
    private readonly MemoryOptions _o;
    private readonly int _features;
    private readonly List<float[]> _inputs = [];
    private readonly List<int> _labels = [], _generations = [];
    /// <summary>This generation began in this process: it is not in its file yet (<see cref="Persist"/>), and then the earlier ones' files are stale.</summary>
    private bool _unsaved, _stale;

    /// <summary>Examples seen by the reservoir so far.</summary>
    public long Seen { get; private set; }
    /// <summary>Data sets the device has learnt from (the current one included).</summary>
    public int Generation { get; private set; }
    public float[]? Anchor { get; private set; }
    public float[]? Fisher { get; private set; }

    public int Count => _labels.Count;

    public DeviceMemory(MemoryOptions o, int features)
    {
        o.Validate();
        _o = o;
        _features = features;
    }

    /// <summary>Remembered examples of data before the current generation: what replay mixes into local steps.</summary>
    public int Earlier => _generations.Count(g => g < Generation);

    /// <summary>
    /// Begins a generation: the device holds new data (or starts remembering). The EWC anchor becomes
    /// <paramref name="model"/> and the Fisher is estimated there on the remembered examples; then the new examples
    /// stream through the reservoir.
    /// </summary>
    public void Begin(Dataset data, ReadOnlySpan<int> examples, LocalLearner learner, float[] model, Rng rng)
    {
        if (data.FeatureCount != _features) throw new ColdmindException($"A memory of {_features} features cannot take data of {data.FeatureCount}.");
        if (_o.Ewc > 0 && Count > 0)
        {
            var remembered = Remembered(data);
            Anchor = model.ToArray();
            Fisher = learner.Fisher(Anchor, remembered, Enumerable.Range(0, remembered.Count).ToArray());
        }
        Generation++;
        _unsaved = true;
        foreach (int e in examples)
        {
            int j = ReservoirSlot(Count, ++Seen, _o.Capacity, rng);
            if (j < 0) continue;
            var x = data.Features.AsSpan(e * _features, _features).ToArray();
            if (j == Count) { _inputs.Add(x); _labels.Add(data.Labels[e]); _generations.Add(Generation); }
            else { _inputs[j] = x; _labels[j] = data.Labels[e]; _generations[j] = Generation; }
        }
    }

    /// <summary>
    /// The memory of a device starting on <paramref name="shard"/>: the one its checkpoint held, or a new one, which
    /// begins a generation when the device holds new data or has remembered nothing yet, anchored at
    /// <paramref name="anchor"/> (<paramref name="anchorName"/> in the log line). Null when <paramref name="o"/> keeps nothing.
    /// </summary>
    public static DeviceMemory? Start(MemoryOptions o, DeviceMemory? restored, bool newData, Dataset train, int[] shard, LocalLearner learner,
        float[] anchor, string anchorName, Action<string> log)
    {
        if (!o.Enabled) return null;
        var memory = restored ?? new DeviceMemory(o, train.FeatureCount);
        if (memory.Generation > 0 && !newData) return memory;
        memory.Begin(train, shard, learner, anchor, new Rng(learner.Seed ^ (ulong)memory.Seen));
        if (memory.Generation > 1)
        {
            var guards = new List<string>();
            if (o.Replay > 0) guards.Add($"replaying {memory.Earlier} remembered examples of earlier data");
            if (memory.Penalty != null) guards.Add(string.Create(CultureInfo.InvariantCulture, $"EWC λ {o.Ewc:G3} towards {anchorName}"));
            log($"memory: generation {memory.Generation}; {string.Join("; ", guards)}");
        }
        return memory;
    }

    /// <summary>
    /// Vitter's algorithm R one example at a time: the slot of a reservoir of <paramref name="capacity"/>, holding
    /// <paramref name="filled"/>, that the <paramref name="seen"/>-th example of a stream (counting from 1) takes, or
    /// −1 when it is not kept. The first examples fill it; after that every example seen so far is in it with the
    /// same probability, capacity / seen.
    /// </summary>
    public static int ReservoirSlot(int filled, long seen, int capacity, Rng rng)
    {
        if (filled < capacity) return filled;
        long j = seen <= int.MaxValue ? rng.NextInt((int)seen) : (long)(rng.NextDouble() * seen);
        return j < capacity ? (int)j : -1;
    }

    /// <summary>
    /// The data local steps train on, and the replay pool in it: with remembered examples of earlier generations to
    /// replay, the current <paramref name="examples"/> (as 0..n−1) followed by those; otherwise the data as it is.
    /// </summary>
    public (Dataset Data, int[] Examples, int[] Replay) Local(Dataset data, int[] examples)
    {
        if (_o.Replay == 0 || Earlier == 0) return (data, examples, []);
        var current = data.Subset(examples);
        var earlier = Enumerable.Range(0, Count).Where(i => _generations[i] < Generation).ToArray();
        var x = new float[(current.Count + earlier.Length) * _features];
        current.Features.CopyTo(x, 0);
        for (int i = 0; i < earlier.Length; i++) _inputs[earlier[i]].CopyTo(x, (current.Count + i) * _features);
        var y = current.Labels.Concat(earlier.Select(i => _labels[i])).ToArray();
        return (new Dataset(data.Name, x, y, data.SampleShape, data.ClassNames), Enumerable.Range(0, current.Count).ToArray(),
            Enumerable.Range(current.Count, earlier.Length).ToArray());
    }

    /// <summary>The EWC penalty of local steps, once the device has moved on from its first data.</summary>
    public Penalty? Penalty => Anchor != null && Fisher != null ? new Penalty(Anchor, _o.Ewc, Fisher) : null;

    /// <summary>The remembered examples as a data set (for the Fisher, and for tests measuring what was kept).</summary>
    public Dataset Remembered(Dataset like) => new($"{like.Name} (remembered)", Inputs(), [.. _labels], like.SampleShape, like.ClassNames);

    /// <summary>The remembered inputs, (count, features) row-major.</summary>
    private float[] Inputs()
    {
        var x = new float[Count * _features];
        for (int i = 0; i < Count; i++) _inputs[i].CopyTo(x, i * _features);
        return x;
    }

    /// <summary>The file beside a device's checkpoint that holds generation <paramref name="generation"/> of its memory.</summary>
    public static string FileFor(string checkpointPath, int generation) => $"{checkpointPath}.memory{generation.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The checkpoint's reference to its memory: the generation, whose file is <see cref="FileFor"/>.</summary>
    private const string GenerationKey = "memory_generation";

    /// <summary>
    /// Writes this generation of the memory to its own file beside the device's checkpoint, once: the memory does not
    /// change within a generation, and 500 Fashion-MNIST images are 1.8 MB, which the device would otherwise rewrite
    /// with every checkpoint. Returns the metadata by which the checkpoint refers to it. The earlier generation's file
    /// stays until the checkpoint refers to this one (<see cref="Referenced"/>), so a crash between the writes loses nothing.
    /// </summary>
    public KeyValuePair<string, string> Persist(string checkpointPath, LocalLearner learner)
    {
        if (_unsaved)
        {
            var (tensors, meta) = ToCheckpoint();
            SwarmCheckpoint.Write(FileFor(checkpointPath, Generation), Kind, learner, tensors, meta.ToDictionary());
            (_unsaved, _stale) = (false, true);
        }
        return new(GenerationKey, Generation.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>Called once the checkpoint at <paramref name="checkpointPath"/> refers to this generation: removes the earlier generations' files.</summary>
    public void Referenced(string checkpointPath)
    {
        if (!_stale) return;
        for (int g = 1; g < Generation; g++) File.Delete(FileFor(checkpointPath, g));
        _stale = false;
    }

    private const string Kind = "memory";

    /// <summary>The tensors and metadata of a memory's file (labels and generations as exact small floats).</summary>
    internal (IReadOnlyList<(string, float[])> Tensors, IReadOnlyList<KeyValuePair<string, string>> Meta) ToCheckpoint()
    {
        var tensors = new List<(string, float[])>
        {
            (Prefix + "inputs", Inputs()), (Prefix + "labels", _labels.Select(l => (float)l).ToArray()), (Prefix + "generations", _generations.Select(g => (float)g).ToArray()),
        };
        if (Anchor != null && Fisher != null) tensors.AddRange([("ewc_anchor", Anchor), ("ewc_fisher", Fisher)]);
        return (tensors, [
            new(Prefix + "seen", Seen.ToString(CultureInfo.InvariantCulture)),
            new(Prefix + "generation", Generation.ToString(CultureInfo.InvariantCulture)),
        ]);
    }

    /// <summary>
    /// The memory the checkpoint at <paramref name="path"/> refers to, read from its file and validated; null when it
    /// refers to none. A memory that <paramref name="o"/> would drop (no --replay or --ewc) is refused rather than lost.
    /// </summary>
    public static DeviceMemory? FromCheckpoint(SwarmCheckpoint checkpoint, string path, MemoryOptions o, LocalLearner learner, int features, int classes)
    {
        if (!checkpoint.HasText(GenerationKey)) return null;
        if (!o.Enabled) throw new ColdmindException($"The checkpoint '{path}' holds a memory of earlier data; start the device with --replay or --ewc to keep it, or move the checkpoint away.");
        long generation = checkpoint.Count(GenerationKey, 1);
        string file = FileFor(path, (int)Math.Min(generation, int.MaxValue));
        if (!File.Exists(file)) throw new ColdmindException($"The checkpoint '{path}' keeps its memory in '{file}', which is missing.");
        var stored = SwarmCheckpoint.Read(file, Kind, "device memory", learner);
        var memory = Parse(stored, o, features, classes);
        return memory.Generation == generation ? memory : throw stored.Bad(Prefix + "generation");
    }

    /// <summary>
    /// A memory's file, validated (shapes, finite inputs, labels in range, generations not ahead of the current one).
    /// A smaller reservoir than the file's keeps its first examples, which are as uniform a sample as the whole.
    /// </summary>
    internal static DeviceMemory Parse(SwarmCheckpoint checkpoint, MemoryOptions o, int features, int classes)
    {
        var memory = new DeviceMemory(o, features)
        {
            Seen = checkpoint.Count(Prefix + "seen"),
            Generation = (int)Math.Min(checkpoint.Count(Prefix + "generation", 1), int.MaxValue),
        };
        var labels = checkpoint.Values(Prefix + "labels");
        var generations = checkpoint.Values(Prefix + "generations", labels.Length);
        var inputs = checkpoint.Values(Prefix + "inputs", labels.Length * features);
        if (labels.Length > memory.Seen) throw checkpoint.Bad(Prefix + "seen");
        for (int i = 0; i < Math.Min(labels.Length, o.Capacity); i++)
        {
            if (labels[i] != MathF.Floor(labels[i]) || labels[i] < 0 || labels[i] >= classes) throw checkpoint.Bad(Prefix + "labels");
            if (generations[i] != MathF.Floor(generations[i]) || generations[i] < 1 || generations[i] > memory.Generation) throw checkpoint.Bad(Prefix + "generations");
            memory._inputs.Add(inputs.AsSpan(i * features, features).ToArray());
            memory._labels.Add((int)labels[i]);
            memory._generations.Add((int)generations[i]);
        }
        if (checkpoint.Has("ewc_anchor"))
        {
            memory.Anchor = checkpoint.Model("ewc_anchor");
            memory.Fisher = checkpoint.Model("ewc_fisher");
            if (memory.Fisher.Any(f => f < 0)) throw checkpoint.Bad("ewc_fisher");
        }
        return memory;
    }
}
