using System.Text.Json;
using Coldmind.Formats;
using Coldmind.Models;
using Coldmind.Nn;
using Coldmind.Quantization;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;

namespace Coldmind.Cost;

/// <summary>
/// One layer's work per inference (or per generated token): operations by kind, the multiplications by zero a
/// sparse kernel skips, bytes of weights read and bytes of activations read and written.
/// </summary>
public sealed record LayerWork(string Name, long Fp32Macs, long Int8Macs, long TernaryAdds, long SkippedZeros, long WeightBytes, long ActivationBytes)
{
    public long Ops(OpKind kind) => kind switch { OpKind.Fp32Mac => Fp32Macs, OpKind.Int8Mac => Int8Macs, _ => TernaryAdds };

    /// <summary>Several pieces of work priced as one layer (a transformer block's matrices and attention).</summary>
    public static LayerWork Combine(string name, IReadOnlyCollection<LayerWork> parts) =>
        new(name, parts.Sum(p => p.Fp32Macs), parts.Sum(p => p.Int8Macs), parts.Sum(p => p.TernaryAdds), parts.Sum(p => p.SkippedZeros),
            parts.Sum(p => p.WeightBytes), parts.Sum(p => p.ActivationBytes));

    /// <summary>A matrix-vector product of <paramref name="rows"/>×<paramref name="columns"/> weights, <paramref name="nonZeros"/> of them kept.</summary>
    public static LayerWork Matrix(string name, OpKind kind, long rows, long columns, long nonZeros, long weightBytes, int activationBytesEach) =>
        new(name, kind == OpKind.Fp32Mac ? nonZeros : 0, kind == OpKind.Int8Mac ? nonZeros : 0, kind == OpKind.TernaryAdd ? nonZeros : 0,
            rows * columns - nonZeros, weightBytes, (rows + columns) * activationBytesEach);
}

/// <summary>
/// What a model costs to run, before any device is chosen: its layers' work per <see cref="Unit"/> ("inference"
/// for a classifier, "token" for a language model decoding at a given context length). Built from the models
/// Coldmind writes (compact classifiers, GGUF language models) or from a network description (JSON) for
/// published models whose files are not here.
/// </summary>
public sealed record Workload(string Name, string Unit, IReadOnlyList<LayerWork> Layers)
{
    /// <summary>The model's test accuracy when its file records it (a classifier written by shrink).</summary>
    public double? Accuracy { get; init; }
    /// <summary>Measurements of this model published elsewhere (network descriptions), to set estimates against.</summary>
    public IReadOnlyList<Published> PublishedResults { get; init; } = [];

    public long WeightBytes => Layers.Sum(l => l.WeightBytes);
    public long ActivationBytes => Layers.Sum(l => l.ActivationBytes);
    public long Ops(OpKind kind) => Layers.Sum(l => l.Ops(kind));
    public long SkippedZeros => Layers.Sum(l => l.SkippedZeros);

    /// <summary>
    /// Any model file the cost model prices: a GGUF language model (per token at <paramref name="context"/>), a classifier
    /// written by train or shrink, or a JSON network description.
    /// </summary>
    public static Workload Open(string path, int context = 256) => ModelFile.Open(path) switch
    {
        GgufModelFile => FromGguf(path, context),
        ClassifierFile c => Of(ClassifierModel.From(c)),
        OnnxModelFile onnx => Of(ClassifierModel.From(onnx.Import())),
        NetworkDescriptionFile d => FromDescription(d.Json, path),
        var other => throw other.NotA("a model the cost model prices"),
    };

    /// <summary>What one inference of a classifier costs: its compact form's layers, an imported stack's or a CNN's work.</summary>
    public static Workload Of(ClassifierModel model) =>
        (model.Compact is { } compact ? FromClassifier(compact, model.Name)
            : model.Network is LayerStack stack ? FromStack(stack, model.Name)
            : FromCnn(model.Spec!, model.Parameters, model.Name))
        with { Accuracy = model.Provenance.TestAccuracy };

    /// <summary>A <see cref="LayerStack"/>'s forward pass: its multiply-adds in float32, all weights read once.</summary>
    private static Workload FromStack(LayerStack stack, string name) =>
        new(name, "inference", [new LayerWork(name, stack.Macs, 0, 0, 0, 4 * stack.ParameterCount, 4L * Tensors.Shape.Numel(stack.Shapes[0]))]);

    /// <summary>
    /// A <see cref="SmallCnn"/>'s forward pass: 3×3 convolutions keeping the size, each followed by a 2×2 pool, then
    /// the hidden and output layers; weights in float32.
    /// </summary>
    private static Workload FromCnn(ClassifierSpec spec, long parameters, string name)
    {
        var (c, h, w) = (spec.InputShape[0], spec.InputShape[1], spec.InputShape[2]);
        long macs = 0;
        foreach (int outChannels in spec.Channels)
        {
            macs += (long)outChannels * c * 9 * h * w;
            (c, h, w) = (outChannels, h / 2, w / 2);
        }
        macs += (long)c * h * w * spec.Hidden[0] + (long)spec.Hidden[0] * spec.Classes;
        return new Workload(name, "inference",
            [new LayerWork(name, macs, 0, 0, 0, 4 * parameters, 4L * Tensors.Shape.Numel(spec.InputShape))]);
    }

    /// <summary>A compiled classifier: dense layers multiply every weight, sparse, ternary and quantized ones only the nonzero ones.</summary>
    public static Workload FromClassifier(CompactClassifier model, string name) =>
        new(name, "inference", model.LayerShapes().Select((l, i) => l.Kind switch
        {
            // ternary: RMSNorm, int8 quantisation and a scale per row in float, then one add per kept trit
            "ternary" => new LayerWork($"{i}:ternary", 3L * l.Columns + l.Rows, 0, l.NonZeros, (long)l.Rows * l.Columns - l.NonZeros, l.Bytes, 5L * l.Columns + 4L * l.Rows),
            "sparse" => LayerWork.Matrix($"{i}:sparse", OpKind.Fp32Mac, l.Rows, l.Columns, l.NonZeros, l.Bytes, 4),
            // rounded after training: priced as the integer (or, for trits, add-only) kernel a device would run on the codes,
            // over the nonzero codes when stored sparse and over all of them when dense
            var k when k.StartsWith("quantized:", StringComparison.Ordinal) => LayerWork.Matrix($"{i}:{k}", k.StartsWith("quantized:ternary", StringComparison.Ordinal) ? OpKind.TernaryAdd : OpKind.Int8Mac,
                l.Rows, l.Columns, k.EndsWith(":sparse", StringComparison.Ordinal) ? l.NonZeros : (long)l.Rows * l.Columns, l.Bytes, 1),
            _ => LayerWork.Matrix($"{i}:dense", OpKind.Fp32Mac, l.Rows, l.Columns, (long)l.Rows * l.Columns, l.Bytes, 4),
        }).ToArray())
        {
            Accuracy = Provenance.Read(model.Metadata, name).TestAccuracy,
        };

    /// <summary>The op kind a GGUF weight type runs as: ternary types add, integer types multiply in int8, float types in fp32.</summary>
    public static OpKind KindOf(GgmlType type) => type switch
    {
        GgmlType.TQ1_0 or GgmlType.TQ2_0 => OpKind.TernaryAdd,
        GgmlType.F32 or GgmlType.F16 or GgmlType.BF16 => OpKind.Fp32Mac,
        _ => OpKind.Int8Mac,
    };

    /// <summary>
    /// One decoded token of a GGUF llama/bitnet model at <paramref name="context"/> cached positions: every weight
    /// matrix once (the output head is the embedding when tied), one embedding row, the norms, and attention over
    /// the cache (scores and values in fp32, the float32 K and V read).
    /// </summary>
    public static Workload FromGguf(string path, int context)
    {
        if (context < 1) throw new ColdmindException($"--context must be at least 1, got {context}.");
        using var file = GgufFile.Open(path);
        var c = ModelConfig.FromGguf(file);
        var layers = new List<LayerWork>();
        var embedding = file.Tensor("token_embd.weight");
        layers.Add(new LayerWork("embedding", 0, 0, 0, 0, embedding.ByteCount / c.VocabSize, 4L * c.EmbeddingLength));
        LayerWork Weights(string name, GgufTensorInfo t)
        {
            long columns = t.Dims[0], rows = t.Count / columns;
            return LayerWork.Matrix(name, KindOf(t.Type), rows, columns, rows * columns, t.ByteCount, 4);
        }
        for (int b = 0; b < c.Layers; b++)
        {
            var block = file.Tensors.Where(t => t.Name.StartsWith($"blk.{b}.", StringComparison.Ordinal)).ToArray();
            var parts = block.Where(t => t.Dims.Length >= 2).Select(t => Weights(t.Name, t)).ToList();
            long vectors = block.Where(t => t.Dims.Length == 1).Sum(t => t.Count);
            long attention = 2L * c.Heads * c.HeadDim * context;
            parts.Add(new LayerWork("attention", attention + vectors, 0, 0, 0, block.Where(t => t.Dims.Length == 1).Sum(t => t.ByteCount),
                2L * context * c.KvLength * 4 + 4L * c.Heads * context));
            layers.Add(LayerWork.Combine($"blk.{b}", parts));
        }
        var output = file.Tensors.FirstOrDefault(t => t.Name == "output.weight") ?? embedding;
        layers.Add(Weights("output", output));
        return new Workload($"{Path.GetFileName(path)} @ {context} tokens", "token", layers);
    }

    /// <summary>
    /// A network description: {"name", "precision": "fp32"|"fp16"|"int8"|"ternary", "layers": [...], optional
    /// "unit" ("inference", or "token" for a language model) and "published": [{"device", "joules", "seconds", "source"}]}. A layer is {"name", "kind": "conv2d"|"depthwise"|
    /// "dense", "input": [h, w, c] or [n], "output": [...], "kernel": [kh, kw]} or {"name", "kind": "transformer",
    /// "embedding", "blocks", "heads", "kv_heads", "ffn", "context"} (decoder blocks with a gated FFN, one token at
    /// a time, fp16 KV cache); either may set its own "precision" and "sparsity" (fraction of weights zero,
    /// skipped). Ops come from the shapes; weights are stored at the precision's width (ternary: 2 bits), biases
    /// as 32 bits; activations at 1 byte (int8, ternary) or 4 (float).
    /// </summary>
    public static Workload FromDescription(string json, string origin)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new ColdmindException($"'{origin}' is not valid JSON: {e.Message}"); }
        using (doc)
        {
            var root = doc.RootElement;
            string Text(JsonElement e, string key, string where) =>
                e.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : throw new ColdmindException($"'{origin}': {where} needs a \"{key}\" string.");
            int[] Dims(JsonElement e, string key, string where)
            {
                if (!e.TryGetProperty(key, out var v) || v.ValueKind != JsonValueKind.Array || v.GetArrayLength() == 0)
                    throw new ColdmindException($"'{origin}': {where} needs \"{key}\" as a list of sizes.");
                var dims = v.EnumerateArray().Select(d => d.ValueKind == JsonValueKind.Number && d.TryGetInt32(out int n) && n > 0 ? n
                    : throw new ColdmindException($"'{origin}': {where}.{key} must hold positive whole numbers.")).ToArray();
                return dims;
            }
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("layers", out var list) || list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0)
                throw new ColdmindException($"'{origin}' is not a network description: it needs a \"layers\" list.");
            string precision = Text(root, "precision", "the network");
            var layers = new List<LayerWork>();
            int index = 0;
            foreach (var l in list.EnumerateArray())
            {
                string where = $"layer {index++}";
                string name = Text(l, "name", where), kind = Text(l, "kind", where);
                where = $"layer '{name}'";
                string p = l.TryGetProperty("precision", out var pv) ? pv.GetString() ?? precision : precision;
                var (op, weightBits, activationBytes) = p switch
                {
                    "fp32" => (OpKind.Fp32Mac, 32, 4),
                    "fp16" => (OpKind.Fp32Mac, 16, 4),
                    "int8" => (OpKind.Int8Mac, 8, 1),
                    "ternary" => (OpKind.TernaryAdd, 2, 1),
                    _ => throw new ColdmindException($"'{origin}': {where} has precision '{p}'; use fp32, fp16, int8 or ternary."),
                };
                double sparsity = l.TryGetProperty("sparsity", out var sv) ? sv.GetDouble() : 0;
                if (!(sparsity >= 0 && sparsity < 1)) throw new ColdmindException($"'{origin}': {where} has sparsity {sparsity}; it must be in [0, 1).");
                if (kind == "transformer")
                {
                    layers.Add(Transformer(l, name, op, weightBits, sparsity, origin, where));
                    continue;
                }
                var input = Dims(l, "input", where);
                var output = Dims(l, "output", where);
                long inputs = input.Aggregate(1L, (a, b) => a * b), outputs = output.Aggregate(1L, (a, b) => a * b);
                long weights, macs, biases = output[^1];
                switch (kind)
                {
                    case "dense":
                        (weights, macs) = (inputs * outputs, inputs * outputs);
                        break;
                    case "conv2d" or "depthwise":
                        var k = Dims(l, "kernel", where);
                        if (input.Length != 3 || output.Length != 3 || k.Length != 2)
                            throw new ColdmindException($"'{origin}': {where} needs input and output as [height, width, channels] and kernel as [height, width].");
                        if (kind == "depthwise" && input[2] != output[2]) throw new ColdmindException($"'{origin}': {where} is depthwise but changes channels {input[2]} → {output[2]}.");
                        long perOutput = (long)k[0] * k[1] * (kind == "depthwise" ? 1 : input[2]);
                        (weights, macs) = (perOutput * output[2], perOutput * outputs);
                        break;
                    default:
                        throw new ColdmindException($"'{origin}': {where} has kind '{kind}'; use dense, conv2d, depthwise or transformer.");
                }
                long kept = (long)Math.Round(macs * (1 - sparsity));
                long weightBytes = (long)Math.Ceiling(weights * (1 - sparsity) * weightBits / 8.0) + 4 * biases;
                layers.Add(new LayerWork(name, op == OpKind.Fp32Mac ? kept : 0, op == OpKind.Int8Mac ? kept : 0, op == OpKind.TernaryAdd ? kept : 0,
                    macs - kept, weightBytes, (inputs + outputs) * activationBytes));
            }
            var published = root.TryGetProperty("published", out var pub) && pub.ValueKind == JsonValueKind.Array
                ? pub.EnumerateArray().Select(x => new Published(Text(x, "device", "a published entry"),
                    x.TryGetProperty("joules", out var j) ? j.GetDouble() : null, x.TryGetProperty("seconds", out var s) ? s.GetDouble() : null,
                    Text(x, "source", "a published entry"))).ToArray()
                : [];
            string unit = root.TryGetProperty("unit", out var u) ? u.GetString() ?? "inference" : "inference";
            return new Workload(Text(root, "name", "the network"), unit, layers) { PublishedResults = published };
        }
    }

    /// <summary>Decoder blocks generating one token: q, k, v, o, gate, up and down matrices, and attention over an fp16 KV cache of "context" positions.</summary>
    private static LayerWork Transformer(JsonElement l, string name, OpKind op, int weightBits, double sparsity, string origin, string where)
    {
        long Size(string key) => l.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long n) && n > 0 ? n
            : throw new ColdmindException($"'{origin}': {where} needs \"{key}\" as a positive whole number.");
        long d = Size("embedding"), blocks = Size("blocks"), heads = Size("heads"), kvHeads = Size("kv_heads"), ffn = Size("ffn"), context = Size("context");
        if (d % heads != 0 || heads % kvHeads != 0) throw new ColdmindException($"'{origin}': {where}: embedding must divide by heads, and heads by kv_heads.");
        long kv = d / heads * kvHeads;
        long weights = 2 * d * d + 2 * d * kv + 3 * d * ffn;
        long kept = (long)Math.Round(weights * (1 - sparsity));
        long attention = 2 * d * context;
        return new LayerWork(name, blocks * ((op == OpKind.Fp32Mac ? kept : 0) + attention), blocks * (op == OpKind.Int8Mac ? kept : 0),
            blocks * (op == OpKind.TernaryAdd ? kept : 0), blocks * (weights - kept), blocks * ((long)Math.Ceiling(kept * weightBits / 8.0) + 4 * 2 * d),
            blocks * (2 * context * kv * 2 + 4 * (8 * d + 2 * ffn)));
    }
}

/// <summary>A published measurement of a model on a device: joules and/or seconds per unit, and where it was published.</summary>
public sealed record Published(string Device, double? Joules, double? Seconds, string Source);
