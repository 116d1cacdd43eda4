using Coldmind.Cost;
using Coldmind.Data;
using Coldmind.Export.Onnx;
using Coldmind.Formats;
using Coldmind.Nn;
using Coldmind.Tensors;

namespace Coldmind.Runtime;

/// <summary>
/// A classifier file of either kind, ready to run one example at a time: a compact classifier written by
/// `coldmind shrink`, or a checkpoint written by `coldmind train` (or `shrink --teacher-out`). MLP checkpoints
/// are compiled to their compact form; a CNN runs through the training engine without recording a graph.
/// </summary>
public sealed class ClassifierModel
{
    private readonly CompactClassifier? _compact;
    private readonly Module? _module;
    private readonly int[] _inputShape;

    public string Name { get; }
    public int Inputs { get; }
    public int Classes { get; }
    /// <summary>What one inference costs, for the cost model.</summary>
    public Workload Work { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>The compact form, when there is one (the head of an MLP can then be refitted on the device).</summary>
    public CompactClassifier? Compact => _compact;

    private ClassifierModel(string name, CompactClassifier? compact, Module? module, int[] inputShape, int classes, Workload work, IReadOnlyDictionary<string, string> metadata)
    {
        (Name, _compact, _module, _inputShape, Classes, Work, Metadata) = (name, compact, module, inputShape, classes, work, metadata);
        Inputs = Tensors.Shape.Numel(inputShape);
    }

    public static ClassifierModel Of(CompactClassifier compact, string name) =>
        new(name, compact, null, [compact.Inputs], compact.Classes, Workload.FromClassifier(compact, name), compact.Metadata);

    /// <summary>A trained network: an MLP compiled to its compact form, a CNN kept as it is.</summary>
    public static ClassifierModel Of(Module model, ClassifierSpec spec, string name, IReadOnlyDictionary<string, string>? metadata = null)
    {
        metadata ??= spec.ToMetadata();
        if (spec.Kind == ClassifierSpec.Mlp) return Of(CompactClassifier.Compile(model, metadata), name);
        model.Eval();
        var work = model is LayerStack stack ? StackWork(stack, name) : CnnWork(spec, model.ParameterCount, name);
        return new ClassifierModel(name, null, model, spec.InputShape, spec.Classes, work, metadata);
    }

    /// <summary>
    /// Reads a compact classifier (`coldmind.format` = compact-classifier), a training checkpoint (a <see cref="ClassifierSpec"/>
    /// in its metadata) or an .onnx classifier (imported for <paramref name="data"/>'s raw features; see <see cref="OnnxImporter"/>).
    /// </summary>
    public static ClassifierModel Load(string path, string? data = null)
    {
        var file = path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? OnnxImporter.Import(path, data).AsFile() : Safetensors.Read(path);
        string name = System.IO.Path.GetFileNameWithoutExtension(path);
        if (file.Metadata.GetValueOrDefault("coldmind.format") == "compact-classifier") return Of(CompactClassifier.Load(file, path), name);
        if (!file.Metadata.ContainsKey("coldmind.model"))
            throw new ColdmindException($"'{path}' is not a compact classifier written by `coldmind shrink`, nor a classifier checkpoint of `coldmind train` " +
                "or `import` (its metadata has neither coldmind.format nor coldmind.model).");
        var spec = ClassifierSpec.FromMetadata(file.Metadata, path);
        var model = spec.Build(new Rng(0));
        model.LoadState(file.Tensors);
        return Of(model, spec, name, file.Metadata);
    }

    /// <summary>Logits of one example.</summary>
    public float[] Logits(ReadOnlySpan<float> x)
    {
        if (x.Length != Inputs) throw new ColdmindException($"'{Name}' takes {Inputs} features, got {x.Length}.");
        if (_compact != null) return _compact.Predict(x);
        using var _ = Tensor.NoGrad();
        return _module!.Forward(Tensor.FromArray(x.ToArray(), [1, .. _inputShape])).ToArray();
    }

    /// <summary>Logits (count, classes) of every example of <paramref name="data"/>.</summary>
    public float[] Logits(Dataset data)
    {
        if (data.FeatureCount != Inputs || data.Classes != Classes)
            throw new ColdmindException($"'{Name}' takes {Inputs} features and {Classes} classes; '{data.Name}' has {data.FeatureCount} and {data.Classes}.");
        if (_module != null) return Trainer.Logits(_module, data);
        var logits = new float[data.Count * Classes];
        for (int i = 0; i < data.Count; i++) _compact!.Predict(data.Features.AsSpan(i * Inputs, Inputs)).CopyTo(logits, i * Classes);
        return logits;
    }

    /// <summary>A <see cref="LayerStack"/>'s forward pass: its multiply-adds in float32, all weights read once.</summary>
    private static Workload StackWork(LayerStack stack, string name) =>
        new(name, "inference", [new LayerWork(name, stack.Macs, 0, 0, 0, 4 * stack.ParameterCount, 4L * Tensors.Shape.Numel(stack.Shapes[0]))]);

    /// <summary>
    /// A <see cref="SmallCnn"/>'s forward pass: 3×3 convolutions keeping the size, each followed by a 2×2 pool, then
    /// the hidden and output layers; weights in float32.
    /// </summary>
    private static Workload CnnWork(ClassifierSpec spec, long parameters, string name)
    {
        var (c, h, w) = (spec.InputShape[0], spec.InputShape[1], spec.InputShape[2]);
        long macs = 0;
        foreach (int outChannels in spec.Channels)
        {
            macs += (long)outChannels * c * 9 * h * w;
            (c, h, w) = (outChannels, h / 2, w / 2);
        }
        macs += (long)c * h * w * spec.Hidden[0] + (long)spec.Hidden[0] * spec.Classes;
        return new Workload(name, "inference", [new LayerWork(name, macs, 0, 0, 0, 4 * parameters, 4L * Tensors.Shape.Numel(spec.InputShape))]);
    }
}
