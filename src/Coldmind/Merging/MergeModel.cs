using System.Globalization;
using System.Text.RegularExpressions;
using Coldmind.Formats;
using Coldmind.Models;
using Coldmind.Nn;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Merging;

/// <summary>One tensor to merge, in float: its logical row-major shape and, for GGUF, the type it was stored as.</summary>
public sealed record WeightTensor(string Name, int[] Shape, float[] Values, GgmlType StoredAs = GgmlType.F32);

/// <summary>
/// A model as merging sees it: every tensor in float, and the model's layers in order. A Coldmind classifier
/// checkpoint (safetensors with a <see cref="ClassifierSpec"/>), whose layers are its Linear / BitLinear layers
/// ("net.1.", "net.3.", … in an MLP), or a GGUF language model, whose layers are its blocks ("blk.0.", …).
/// </summary>
public sealed partial class MergeModel
{
    public string Name { get; }
    public IReadOnlyList<WeightTensor> Tensors { get; }
    /// <summary>The classifier's shape; null for a language model.</summary>
    public ClassifierSpec? Spec { get; }
    /// <summary>Safetensors metadata of a classifier (the data it was trained on, its seed, …).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }
    /// <summary>GGUF metadata of a language model; null for a classifier.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>>? GgufMetadata { get; }
    /// <summary>Layer prefixes in the order an input passes them.</summary>
    public IReadOnlyList<string> Layers { get; }

    private readonly Dictionary<string, WeightTensor> _byName;

    private MergeModel(string name, IReadOnlyList<WeightTensor> tensors, ClassifierSpec? spec, IReadOnlyDictionary<string, string> metadata,
        IReadOnlyList<KeyValuePair<string, GgufValue>>? gguf)
    {
        (Name, Tensors, Spec, Metadata, GgufMetadata) = (name, tensors, spec, metadata, gguf);
        _byName = tensors.ToDictionary(t => t.Name);
        Layers = FindLayers(tensors, gguf != null);
    }

    public bool IsLanguageModel => GgufMetadata != null;

    public string Architecture => Spec?.Describe() ?? $"{GgufString("general.architecture")} LM, {Layers.Count} blocks, width {EmbeddingWidth}";

    public WeightTensor Get(string name) => _byName.TryGetValue(name, out var t) ? t
        : throw new ColdmindException($"'{Name}' has no tensor '{name}'.");

    public long ParameterCount => Tensors.Sum(t => (long)t.Values.Length);

    /// <summary>A classifier's network with these weights, ready to train or run.</summary>
    public Module ToClassifier()
    {
        var net = (Spec ?? throw new ColdmindException($"'{Name}' is a language model, not a classifier.")).Build(new Rng(0));
        net.LoadState(Tensors.ToDictionary(t => t.Name, t => Coldmind.Tensors.Tensor.FromArray(t.Values, t.Shape)));
        return net;
    }

    /// <summary>Reads a classifier checkpoint (.safetensors written by `coldmind train`, `merge` or `evolve`) or a GGUF language model.</summary>
    public static MergeModel Load(string path)
    {
        string name = System.IO.Path.GetFileName(path);
        var opened = ModelFile.Open(path);
        if (opened is GgufModelFile)
        {
            using var file = GgufFile.Open(path);
            var tensors = file.Tensors.Select(t => new WeightTensor(t.Name, t.Dims.Reverse().Select(d => checked((int)d)).ToArray(), file.ReadFloats(t), t.Type)).ToList();
            return new MergeModel(name, tensors, null, new Dictionary<string, string>(), file.Metadata.ToList());
        }
        if (opened is not ClassifierFile { IsCompact: false } checkpoint)
            throw opened is ClassifierFile
                ? new ColdmindException($"'{path}' is a compact (shrunk) classifier; merge the float or ternary checkpoints written by `coldmind train` instead.")
                : opened.NotA("a classifier checkpoint or a GGUF language model to merge");
        var (st, spec) = (checkpoint.File, checkpoint.Provenance.Spec!);
        var stored = st.ToTensors();
        var expected = spec.Build(new Rng(0)).NamedParameters().ToList();
        var list = new List<WeightTensor>();
        foreach (var (n, p) in expected)
        {
            if (!stored.TryGetValue(n, out var t)) throw new ColdmindException($"'{path}' has no tensor '{n}', which a {spec.Describe()} needs.");
            if (!Shape.SameShape(t.Shape, p.Shape))
                throw new ColdmindException($"'{path}': tensor '{n}' has shape {Shape.Format(t.Shape)}, a {spec.Describe()} needs {Shape.Format(p.Shape)}.");
            list.Add(new WeightTensor(n, t.Shape.ToArray(), t.ToArray()));
        }
        return new MergeModel(name, list, spec, st.Metadata, null);
    }

    /// <summary>The same model with other values for its tensors (same names and shapes, in the same order).</summary>
    public MergeModel With(string name, IReadOnlyList<float[]> values) =>
        new(name, Tensors.Select((t, i) => t with { Values = values[i] }).ToList(), Spec, Metadata, GgufMetadata);

    /// <summary>
    /// Parameter-space merging needs the same architecture: the same tensors with the same shapes. Throws a
    /// message naming the first difference.
    /// </summary>
    public void RequireSameShape(MergeModel other)
    {
        if (IsLanguageModel != other.IsLanguageModel)
            throw new ColdmindException($"'{other.Name}' is a {Kind(other)} and '{Name}' a {Kind(this)}; merged models must be of one kind.");
        if (other.Tensors.Count != Tensors.Count || Architecture != other.Architecture)
            throw new ColdmindException($"'{other.Name}' ({other.Architecture}, {other.Tensors.Count} tensors) does not match '{Name}' ({Architecture}, {Tensors.Count} tensors).");
        if (IsLanguageModel) RequireSameVocabulary(other);
        foreach (var t in Tensors)
        {
            if (!other._byName.TryGetValue(t.Name, out var o)) throw new ColdmindException($"'{other.Name}' has no tensor '{t.Name}', which '{Name}' has.");
            if (!Shape.SameShape(t.Shape, o.Shape))
                throw new ColdmindException($"Tensor '{t.Name}' is {Shape.Format(o.Shape)} in '{other.Name}' and {Shape.Format(t.Shape)} in '{Name}'.");
        }
    }

    /// <summary>
    /// Layer stacking (passthrough) and data-flow paths need models whose layers can follow one another: the
    /// same kind of classifier (input, classes, float or ternary) or language models of one architecture,
    /// width and vocabulary; widths along the path are checked when it is built.
    /// </summary>
    public void RequireStackable(MergeModel other)
    {
        if (IsLanguageModel != other.IsLanguageModel)
            throw new ColdmindException($"'{other.Name}' is a {Kind(other)} and '{Name}' a {Kind(this)}; their layers cannot be stacked.");
        if (Spec is { } a && other.Spec is { } b)
        {
            if (a.Kind != ClassifierSpec.Mlp || b.Kind != ClassifierSpec.Mlp)
                throw new ColdmindException($"Layer stacking and data-flow merging are implemented for MLP classifiers; '{(a.Kind != ClassifierSpec.Mlp ? Name : other.Name)}' is a {(a.Kind != ClassifierSpec.Mlp ? a : b).Describe()}.");
            if (!a.InputShape.SequenceEqual(b.InputShape) || a.Classes != b.Classes || a.Ternary != b.Ternary)
                throw new ColdmindException($"'{other.Name}' ({b.Describe()}) and '{Name}' ({a.Describe()}) differ in input, classes or precision; their layers cannot be stacked.");
            return;
        }
        if (GgufString("general.architecture") != other.GgufString("general.architecture") || EmbeddingWidth != other.EmbeddingWidth)
            throw new ColdmindException($"'{other.Name}' ({other.Architecture}) and '{Name}' ({Architecture}) differ in architecture or width; their blocks cannot be stacked.");
        var mine = LayerTensors(0).Select(t => (t.Name[Layers[0].Length..], Shape.Format(t.Shape)));
        var theirs = other.LayerTensors(0).Select(t => (t.Name[other.Layers[0].Length..], Shape.Format(t.Shape)));
        if (!mine.SequenceEqual(theirs)) throw new ColdmindException($"The blocks of '{other.Name}' and '{Name}' have different tensors or shapes.");
        RequireSameVocabulary(other);
    }

    /// <summary>The tensors of layer <paramref name="layer"/>, in file order.</summary>
    public IEnumerable<WeightTensor> LayerTensors(int layer) => Tensors.Where(t => t.Name.StartsWith(Layers[layer], StringComparison.Ordinal));

    /// <summary>Tensors outside the layers: a language model's embedding, output norm and head.</summary>
    public IEnumerable<WeightTensor> FrameTensors() => Tensors.Where(t => !Layers.Any(l => t.Name.StartsWith(l, StringComparison.Ordinal)));

    /// <summary>(inputs, outputs) of a classifier layer: the columns and rows of its weight.</summary>
    public (int In, int Out) LayerWidths(int layer)
    {
        var w = Get(Layers[layer] + "weight");
        return (w.Shape[1], w.Shape[0]);
    }

    /// <summary>
    /// The tensors of a layer that scale its output: a float layer's weight and bias; a BitLinear's input norm
    /// (its int8 quantisation is scale-free, so the norm's gain scales the output); a block's sub-norms (or, without
    /// them, its output and down projections), which scale what the block adds to the residual stream.
    /// </summary>
    public bool ScalesOutput(string layerPrefix, string tensorName)
    {
        string suffix = tensorName[layerPrefix.Length..];
        if (!IsLanguageModel)
            return Spec!.Ternary && !IsHead(layerPrefix) ? suffix == "norm.weight" : suffix is "weight" or "bias";
        bool subNorms = _byName.ContainsKey(layerPrefix + "attn_sub_norm.weight");
        return subNorms ? suffix is "attn_sub_norm.weight" or "ffn_sub_norm.weight" : suffix is "attn_output.weight" or "ffn_down.weight";
    }

    private bool IsHead(string layerPrefix) => layerPrefix == Layers[^1];

    /// <summary>
    /// A new model whose layers are <paramref name="steps"/> in order, each output scaled; a language model keeps
    /// the embedding, output norm and head of <paramref name="frame"/>. Widths must chain.
    /// </summary>
    public static MergeModel Stack(IReadOnlyList<(MergeModel Source, int Layer, float Scale)> steps, MergeModel frame, string name)
    {
        if (steps.Count == 0) throw new ColdmindException("A layer stack needs at least one layer.");
        foreach (var (source, layer, _) in steps)
        {
            frame.RequireStackable(source);
            if (layer < 0 || layer >= source.Layers.Count)
                throw new ColdmindException($"'{source.Name}' has layers 0 to {source.Layers.Count - 1}; layer {layer} does not exist.");
        }
        return frame.IsLanguageModel ? StackBlocks(steps, frame, name) : StackClassifier(steps, frame, name);
    }

    private static MergeModel StackClassifier(IReadOnlyList<(MergeModel Source, int Layer, float Scale)> steps, MergeModel frame, string name)
    {
        var spec = frame.Spec!;
        int width = Shape.Numel(spec.InputShape);
        var hidden = new List<int>();
        for (int k = 0; k < steps.Count; k++)
        {
            var (source, layer, _) = steps[k];
            var (inputs, outputs) = source.LayerWidths(layer);
            if (inputs != width)
                throw new ColdmindException($"Step {k + 1} (layer {layer} of '{source.Name}') takes {inputs} inputs, the step before it gives {width}.");
            bool last = k == steps.Count - 1, head = layer == source.Layers.Count - 1;
            if (spec.Ternary && last != head)
                throw new ColdmindException($"In a ternary MLP only a model's last (float) layer can end the stack, and it must: step {k + 1} is layer {layer} of '{source.Name}'.");
            if (!last) hidden.Add(outputs);
            width = outputs;
        }
        if (width != spec.Classes) throw new ColdmindException($"The stack ends with {width} outputs; the model has {spec.Classes} classes.");
        var childSpec = spec with { Hidden = [.. hidden] };
        var child = childSpec.Build(new Rng(0));
        var childLayers = FindLayers(child.NamedParameters().Select(p => new WeightTensor(p.Name, p.Tensor.Shape, [])).ToList(), languageModel: false);
        var tensors = new List<WeightTensor>();
        for (int k = 0; k < steps.Count; k++) tensors.AddRange(Renamed(steps[k], childLayers[k]));
        var metadata = new Dictionary<string, string>(frame.Metadata);
        foreach (var (key, value) in new Provenance { Spec = childSpec }.ToMetadata()) metadata[key] = value;
        return new MergeModel(name, tensors, childSpec, metadata, null);
    }

    private static MergeModel StackBlocks(IReadOnlyList<(MergeModel Source, int Layer, float Scale)> steps, MergeModel frame, string name)
    {
        var tensors = frame.FrameTensors().ToList();
        for (int k = 0; k < steps.Count; k++) tensors.AddRange(Renamed(steps[k], $"blk.{k}."));
        string arch = frame.GgufString("general.architecture");
        var metadata = frame.GgufMetadata!.Select(kv => kv.Key == arch + ".block_count" ? new(kv.Key, GgufValue.Of((uint)steps.Count)) : kv).ToList();
        return new MergeModel(name, tensors, null, new Dictionary<string, string>(), metadata);
    }

    private static IEnumerable<WeightTensor> Renamed((MergeModel Source, int Layer, float Scale) step, string prefix)
    {
        var (source, layer, scale) = step;
        string from = source.Layers[layer];
        foreach (var t in source.LayerTensors(layer))
        {
            var values = t.Values;
            if (scale != 1 && source.ScalesOutput(from, t.Name))
            {
                values = new float[values.Length];
                TensorPrimitives.Multiply(t.Values, scale, values);
            }
            yield return t with { Name = prefix + t.Name[from.Length..], Values = values };
        }
    }

    /// <summary>
    /// Writes the model as its parents were: a classifier checkpoint (loadable by `coldmind eval`, `predict`,
    /// `shrink --teacher`) or a GGUF whose tensors keep their stored types where those can be packed again.
    /// <paramref name="recipe"/> (JSON) is kept in the metadata so the file says how it was made.
    /// </summary>
    public void Save(string path, string recipe)
    {
        if (!IsLanguageModel)
        {
            if (!path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) throw new ColdmindException($"A merged classifier is written as .safetensors, not '{path}'.");
            var metadata = (Provenance.Read(Metadata, path) with { Merge = recipe, TestAccuracy = null }).ToMetadata();
            TensorFile.Write(path, Tensors.Select(t => (t.Name, Coldmind.Tensors.Tensor.FromArray(t.Values, t.Shape))), metadata);
            return;
        }
        if (!path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) throw new ColdmindException($"A merged language model is written as .gguf, not '{path}'.");
        var w = new GgufWriter();
        foreach (var (key, value) in GgufMetadata!) w.Set(key, value);
        w.Set("general.name", GgufValue.Of(System.IO.Path.GetFileNameWithoutExtension(path)));
        w.Set(Provenance.MergeKey, GgufValue.Of(recipe));
        foreach (var t in Tensors)
        {
            long[] dims = t.Shape.Reverse().Select(d => (long)d).ToArray();
            var traits = GgmlTypes.Traits(t.StoredAs);
            if (!traits.CanPack || dims[0] % traits.BlockSize != 0) traits = GgmlTypes.Traits(GgmlType.F32);
            // a merged ternary tensor is ternarized as BitNet does (absmean), which TQ2_0's per-block absmax then holds exactly
            w.AddTensor(t.Name, dims, traits.Type, traits.Quantize(LmTraining.TinyLmExport.IsTernary(traits.Type) ? BitNetQuantizer.ProjectTernary(t.Values) : t.Values));
        }
        w.Write(path);
    }

    private static string Kind(MergeModel m) => m.IsLanguageModel ? "language model" : "classifier";

    private string GgufString(string key) => GgufMetadata?.FirstOrDefault(kv => kv.Key == key).Value?.ToString() ?? "";

    private int EmbeddingWidth => _byName.TryGetValue("token_embd.weight", out var e) ? e.Shape[^1] : 0;

    private void RequireSameVocabulary(MergeModel other)
    {
        var a = GgufMetadata!.FirstOrDefault(kv => kv.Key == "tokenizer.ggml.tokens").Value?.Value as Array;
        var b = other.GgufMetadata!.FirstOrDefault(kv => kv.Key == "tokenizer.ggml.tokens").Value?.Value as Array;
        if (a == null || b == null || !a.Cast<object>().SequenceEqual(b.Cast<object>()))
            throw new ColdmindException($"'{other.Name}' and '{Name}' do not have the same vocabulary (tokenizer.ggml.tokens); their weights mean different tokens.");
    }

    [GeneratedRegex(@"^(net\.\d+\.|blk\.\d+\.)")]
    private static partial Regex LayerPrefix();

    private static List<string> FindLayers(IReadOnlyList<WeightTensor> tensors, bool languageModel)
    {
        var prefixes = new List<string>();
        foreach (var t in tensors)
        {
            var m = LayerPrefix().Match(t.Name);
            if (!m.Success || prefixes.Contains(m.Value)) continue;
            bool block = m.Value.StartsWith("blk.", StringComparison.Ordinal);
            if (block != languageModel) continue;
            if (!languageModel && !tensors.Any(x => x.Name == m.Value + "weight" && x.Shape.Length >= 2)) continue;
            prefixes.Add(m.Value);
        }
        return prefixes.OrderBy(p => int.Parse(p.Split('.')[1], CultureInfo.InvariantCulture)).ToList();
    }
}
