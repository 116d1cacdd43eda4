using Coldmind.Data;
using Coldmind.Models;
using Coldmind.Nn;
using Coldmind.Tensors;

namespace Coldmind.Runtime.Classifier;

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
    /// <summary>The network's description, for a model that runs through the training engine (a CNN); null for compact ones.</summary>
    public ClassifierSpec? Spec { get; }
    /// <summary>The network, for a model that runs through the training engine (a CNN, an imported stack); null for compact ones.</summary>
    public Module? Network => _module;
    /// <summary>Weights and biases, counted whether zero or not.</summary>
    public long Parameters { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>What the file says of the model: its data, split seed, label column, temperature, …</summary>
    public Provenance Provenance { get; }
    /// <summary>The compact form, when there is one (the head of an MLP can then be refitted on the device).</summary>
    public CompactClassifier? Compact => _compact;

    private ClassifierModel(string name, CompactClassifier? compact, Module? module, ClassifierSpec? spec, int[] inputShape, int classes,
        long parameters, IReadOnlyDictionary<string, string> metadata)
    {
        (Name, _compact, _module, Spec, _inputShape, Classes, Parameters, Metadata) = (name, compact, module, spec, inputShape, classes, parameters, metadata);
        Provenance = Provenance.Read(metadata, name);
        Inputs = Tensors.Shape.Numel(inputShape);
    }

    public static ClassifierModel Of(CompactClassifier compact, string name) =>
        new(name, compact, null, null, [compact.Inputs], compact.Classes, compact.Parameters, compact.Metadata);

    /// <summary>A trained network: an MLP compiled to its compact form, a CNN kept as it is.</summary>
    public static ClassifierModel Of(Module model, ClassifierSpec spec, string name, IReadOnlyDictionary<string, string>? metadata = null)
    {
        metadata ??= new Provenance { Spec = spec }.ToMetadata();
        if (spec.Kind == ClassifierSpec.Mlp) return Of(CompactClassifier.Compile(model, metadata), name);
        model.Eval();
        return new ClassifierModel(name, null, model, spec, spec.InputShape, spec.Classes, model.ParameterCount, metadata);
    }

    /// <summary>
    /// A compact classifier, a training checkpoint, or an ONNX classifier (imported for <paramref name="data"/>'s raw
    /// features; default: the data it names); any other model file is an error saying what it is.
    /// </summary>
    public static ClassifierModel Load(string path, string? data = null) => ModelFile.Open(path) switch
    {
        ClassifierFile c => From(c),
        OnnxModelFile onnx => From(onnx.Import(data)),
        var other => throw other.NotA("a classifier"),
    };

    public static ClassifierModel From(ClassifierFile file)
    {
        string name = System.IO.Path.GetFileNameWithoutExtension(file.Path);
        if (file.IsCompact) return Of(CompactClassifier.Load(file), name);
        var spec = file.Provenance.Spec!;
        var model = spec.Build(new Rng(0));
        model.LoadState(file.File.ToTensors());
        return Of(model, spec, name, file.File.Metadata);
    }

    /// <summary>The network a training checkpoint describes, or the layers of a compact model.</summary>
    public string Describe() => Provenance.Spec?.Describe() ?? _compact!.Describe();

    /// <summary>The fraction of <paramref name="data"/>'s examples whose highest logit is their label.</summary>
    public float Accuracy(Dataset data)
    {
        var logits = Logits(data);
        int correct = 0;
        for (int i = 0; i < data.Count; i++)
            if (TensorPrimitives.IndexOfMax(logits.AsSpan(i * Classes, Classes)) == data.Labels[i]) correct++;
        return (float)correct / Math.Max(1, data.Count);
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
}
