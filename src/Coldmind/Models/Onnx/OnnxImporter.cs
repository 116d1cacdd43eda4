using System.Globalization;
using Coldmind.Data;
using Coldmind.Formats;
using Coldmind.Formats.Onnx;
using Coldmind.Nn;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Models.Onnx;

/// <summary>A classifier read from ONNX: a <see cref="ClassifierSpec.Stack"/> spec, its weights, and its
/// metadata.</summary>
public sealed record ImportedClassifier(ClassifierSpec Spec, IReadOnlyDictionary<string, Tensor> State, Provenance Provenance)
{
    public IReadOnlyDictionary<string, string> Metadata => Provenance.ToMetadata();

    /// <summary>The network in evaluation mode.</summary>
    public Module Build()
    {
        var model = Spec.Build(new Rng(0));
        model.LoadState(State);
        model.Eval();
        return model;
    }

    /// <summary>As if read from the checkpoint <see cref="Save"/> writes.</summary>
    public Safetensors.File AsFile() => new(State.ToDictionary(kv => kv.Key, kv => new Safetensors.Array(kv.Value.Shape.ToArray(), kv.Value.ToArray())),
        State.Keys.ToDictionary(k => k, _ => "F32"), Metadata);

    /// <summary>A `coldmind train`-style checkpoint: eval, predict, cost, ptq and shrink --teacher read it.</summary>
    public void Save(string path) => TensorFile.Write(path, State.Select(kv => (kv.Key, kv.Value)), Metadata);
}

/// <summary> Reads the ONNX graphs small classifiers exported by torch.onnx.export (and by <c>Export.Onnx.OnnxExporter</c>)
/// into a <see cref="LayerStack"/>: a chain of Gemm / MatMul(+Add), Conv, MaxPool, AveragePool, GlobalAveragePool,
/// Relu, Sigmoid, Tanh, Gelu, Flatten / Reshape, elementwise Add / Sub / Mul / Div by constants; BatchNormalization
/// folded into the layer before it (or kept as an elementwise scaling); Dropout and Identity dropped; a final Softmax
/// or LogSoftmax dropped (the classifier gives logits), and a final division of the logits by a constant kept as the
/// calibration temperature. Constants: initializers (raw or typed), Constant nodes, and DequantizeLinear of them (QDQ
/// weights), folded to float; Coldmind's own BitLinear subgraph as a <c>bitlinear</c> layer. The graph is taken to
/// expect raw features: the scaling of the data the model is used with is put in front (as its inverse), so Coldmind's
/// scaled examples reach it as raw ones. Anything else is refused with one message naming the node, its op type and the
/// opset. </summary>
public static class OnnxImporter
{
    public const int MinOpset = 11, MaxOpset = OnnxOpset.Newest;

    /// <summary>
    /// Imports <paramref name="path"/> for use with <paramref name="dataSpec"/> (default: the data its metadata
    /// names, else digits) split by <paramref name="seed"/>.
    /// </summary>
    public static ImportedClassifier Import(
        string path,
        string? dataSpec = null,
        ulong? seed = null,
        string? label = null
    )
    {
        var model = OnnxFile.Read(path);
        string where = $"'{path}'";
        long opset = model.Opset;
        if (opset is < MinOpset or > MaxOpset)
            throw new ColdmindException(
                $"{where} uses opset {opset}; Coldmind imports opsets {MinOpset} to {MaxOpset}."
            );
        var given = Provenance.Read(model.Metadata, where);
        dataSpec ??= given.Data ?? "digits";
        seed ??= given.Seed;
        label ??= given.Label;
        var chain = new Chain(model.Graph, opset, where);
        chain.Walk();
        chain.Prepend(InputScaling.For(dataSpec, seed ?? 0, label));

        var (spec, state) = chain.ToStack();
        var provenance = given with
        {
            Spec = spec, Data = dataSpec, Seed = seed ?? 0, Label = label, Temperature = chain.Temperature ?? given.Temperature,
            Format = null, Layers = null, Other = new Dictionary<string, string>(),
            Onnx = $"{Path.GetFileName(path)} (opset {opset}, {(model.Producer.Length > 0 ? model.Producer : "unknown producer")})",
        };
        return new ImportedClassifier(spec, state, provenance);
    }

    /// <summary>One layer of the stack being built; shapes exclude the batch.</summary>
    private sealed class Layer(string text, int[] output)
    {
        public string Text = text;
        public int[] Output = output;
        public float[]? Weight,
            Bias,
            Scale,
            Shift,
            Norm;
        public int[] WeightShape = [];
    }

    /// <summary>The walk along the graph from its input to its first output.</summary>
    private sealed class Chain(OnnxGraph graph, long opset, string where)
    {
        private readonly Dictionary<string, OnnxTensor> _constants = graph
            .Initializers.GroupBy(t => t.Name)
            .ToDictionary(g => g.Key, g => g.Last());
        private readonly List<Layer> _layers = [];
        private int[] _inputShape = [];

        public float? Temperature { get; private set; }

        private int[] Shape => _layers.Count > 0 ? _layers[^1].Output : _inputShape;

        public void Walk()
        {
            var inputs = graph.Inputs.Where(v => !_constants.ContainsKey(v.Name)).ToArray();
            if (inputs.Length != 1)
                throw new ColdmindException(
                    $"{where} has {inputs.Length} inputs besides its weights; Coldmind imports classifiers of one input."
                );
            if (graph.Outputs.Count == 0)
                throw new ColdmindException($"{where} has no output.");
            var input = inputs[0];
            if (input.ElementType != OnnxDataType.Float)
                throw new ColdmindException(
                    $"{where}: input '{input.Name}' is {input.ElementType}; Coldmind imports float inputs."
                );
            if (input.Dims.Length is not (2 or 4) || input.Dims.Skip(1).Any(d => d is null or < 1 or > 1 << 24))
                throw new ColdmindException(
                    $"{where}: input '{input.Name}' has shape [{string.Join(", ", input.Dims.Select(d => d?.ToString(CultureInfo.InvariantCulture) ?? "?"))}]; "
                        + "Coldmind imports (batch, features) or (batch, channels, height, width) with fixed sizes after the batch."
                );
            _inputShape = input.Dims.Skip(1).Select(d => (int)d!.Value).ToArray();
            string output = graph.Outputs[0].Name;

            var order = TopologicalOrder(input.Name);
            var needed = Needed(order, output);
            string current = input.Name;
            bool ended = false;
            var path = order.Where(needed.Contains).ToList();
            var consumers = path.SelectMany(n => n.Inputs.Distinct().Select(i => (Value: i, Node: n)))
                .ToLookup(p => p.Value, p => p.Node);
            var done = new HashSet<OnnxNode>(ReferenceEqualityComparer.Instance);
            for (int k = 0; k < path.Count; k++)
            {
                var node = path[k];
                if (done.Contains(node) || Fold(node))
                    continue;
                if (node is { OpType: "Mul", Inputs: [var a, var b] } && a == current && b == current)
                {
                    current = BitLinear(node, consumers, done);
                    continue;
                }
                var data = node.Inputs.Where(i => i.Length > 0 && !_constants.ContainsKey(i)).ToArray();
                if (data.Length != 1 || data[0] != current)
                    throw Refuse(
                        node,
                        data.Length == 0
                            ? "its inputs are constants Coldmind cannot fold"
                            : "it does not take the previous layer's output alone (a branch or skip connection); Coldmind imports chains of layers"
                    );
                if (ended && node.OpType != "Identity")
                    throw Refuse(node, "it comes after the final Softmax");
                bool tail = path.Skip(k + 1).All(n => n.OpType is "Softmax" or "LogSoftmax" or "Identity");
                if (
                    tail
                    && Shape.Length == 1
                    && node.OpType is "Div" or "Mul"
                    && Const(node, 1) is { Count: 1 } divisor
                    && divisor.ToFloats()[0] > 0
                )
                    // a uniform division of the logits at the very end is the calibration temperature
                    Temperature = node.OpType == "Div" ? divisor.ToFloats()[0] : 1 / divisor.ToFloats()[0];
                else
                    ended |= Apply(node);
                current = node.Outputs[0];
            }
            if (current != output)
                throw new ColdmindException(
                    $"{where}: output '{output}' is not computed from the input by a chain of layers."
                );
            if (Shape.Length != 1)
                throw new ColdmindException(
                    $"{where}: the output has shape {Tensors.Shape.Format(Shape)} per example; a classifier gives one vector of logits."
                );
        }

        /// <summary>The nodes in an order where each comes after its inputs' producers; refuses cycles and dangling
        /// inputs.</summary>
        private List<OnnxNode> TopologicalOrder(string input)
        {
            var producer = new Dictionary<string, OnnxNode>();
            foreach (var node in graph.Nodes)
            foreach (var o in node.Outputs.Where(o => o.Length > 0))
                if (!producer.TryAdd(o, node) || _constants.ContainsKey(o) || o == input)
                    throw new ColdmindException(
                        $"{where}: value '{o}' is produced twice (by node '{node.Name}' and another): not a valid graph."
                    );
            var pending = new Dictionary<OnnxNode, int>(ReferenceEqualityComparer.Instance);
            var users = new Dictionary<OnnxNode, List<OnnxNode>>(ReferenceEqualityComparer.Instance);
            var ready = new Queue<OnnxNode>();
            foreach (var node in graph.Nodes)
            {
                int count = 0;
                foreach (var i in node.Inputs.Where(i => i.Length > 0))
                {
                    if (producer.TryGetValue(i, out var p))
                    {
                        count++;
                        if (!users.TryGetValue(p, out var list))
                            users[p] = list = [];
                        list.Add(node);
                    }
                    else if (!_constants.ContainsKey(i) && i != input)
                        throw new ColdmindException(
                            $"{where}: node '{node.Name}' ({node.OpType}) takes '{i}', which no node, weight or input provides (a truncated or damaged file?)."
                        );
                }
                pending[node] = count;
                if (count == 0)
                    ready.Enqueue(node);
            }
            var order = new List<OnnxNode>();
            while (ready.TryDequeue(out var node))
            {
                order.Add(node);
                foreach (var user in users.GetValueOrDefault(node) ?? [])
                    if (--pending[user] == 0)
                        ready.Enqueue(user);
            }
            if (order.Count < graph.Nodes.Count)
            {
                var stuck = graph.Nodes.First(n => pending[n] > 0);
                throw new ColdmindException(
                    $"{where}: the graph has a cycle through node '{stuck.Name}' ({stuck.OpType}); an ONNX graph must be acyclic."
                );
            }
            return order;
        }

        /// <summary>
        /// Coldmind's BitLinear as <c>Export.Onnx.OnnxExporter</c> writes it, from its first node Mul(x, x): RMSNorm
        /// (ReduceMean, Add ε, Sqrt, Reciprocal, Mul, Mul gain), the per-example absmax int8 QuantizeLinear /
        /// DequantizeLinear of the activations (step = Max(ReduceMax(Abs(h)) / 127, floor)), and MatMul with the
        /// dequantized trits. Becomes a <c>bitlinear</c> layer; returns the MatMul's output.
        /// </summary>
        private string BitLinear(OnnxNode square, ILookup<string, OnnxNode> consumers, HashSet<OnnxNode> done)
        {
            string x = square.Inputs[0];
            OnnxNode Next(OnnxNode from, string op, int output = 0) =>
                consumers[from.Outputs[output]].SingleOrDefault(n => n.OpType == op)
                ?? throw Refuse(square, $"it starts no BitLinear pattern (no {op} after {from.OpType})");
            var mean = Next(square, "ReduceMean");
            var add = Next(mean, "Add");
            var sqrt = Next(add, "Sqrt");
            var reciprocal = Next(sqrt, "Reciprocal");
            var normalize = consumers[reciprocal.Outputs[0]]
                .SingleOrDefault(n => n.OpType == "Mul" && n.Inputs.Contains(x))
                ?? throw Refuse(square, "it starts no BitLinear pattern (x is not multiplied by 1 / rms)");
            var gain = Next(normalize, "Mul");
            var abs = Next(gain, "Abs");
            var reduceMax = Next(abs, "ReduceMax");
            var max = Next(reduceMax, "Div");
            var floor = Next(max, "Max");
            var quantize = Next(gain, "QuantizeLinear");
            var dequantize = Next(quantize, "DequantizeLinear");
            var matmul = Next(dequantize, "MatMul");
            float eps = Const(add, 1).ToFloats()[0],
                divisor = Const(max, 1).ToFloats()[0];
            if (
                MathF.Abs(eps - 1e-6f) > 1e-9f
                || divisor != 127
                || quantize.Inputs[1] != floor.Outputs[0]
                || dequantize.Inputs[1] != floor.Outputs[0]
            )
                throw Refuse(
                    square,
                    "its RMSNorm ε or activation quantization is not BitLinear's (ε 1e-6, absmax / 127)"
                );
            var w = Const(matmul, 1); // (in, out): trits · scale, one magnitude
            var values = Transposed(w).ToFloats();
            float scale = values.Select(MathF.Abs).Max();
            if (w.Dims.Length != 2 || w.Dims[0] != Shape[0] || values.Any(v => v != 0 && MathF.Abs(v) != scale))
                throw Refuse(matmul, "its weight is not ternary (trits times one scale) of the layer's width");
            int inputs = Shape[0],
                outputs = (int)w.Dims[1];
            var layer = Add($"bitlinear {outputs}", [outputs]);
            (layer.Weight, layer.WeightShape, layer.Norm) = (
                BitNetQuantizer.LatentOf(values),
                [outputs, inputs],
                Const(gain, 1).ToFloats()
            );
            if (layer.Norm.Length != inputs)
                throw Refuse(gain, $"its gain has {layer.Norm.Length} values for {inputs} features");
            done.UnionWith([
                square,
                mean,
                add,
                sqrt,
                reciprocal,
                normalize,
                gain,
                abs,
                reduceMax,
                max,
                floor,
                quantize,
                dequantize,
                matmul,
            ]);
            return matmul.Outputs[0];
        }

        /// <summary>The nodes <paramref name="output"/> depends on.</summary>
        private static HashSet<OnnxNode> Needed(List<OnnxNode> order, string output)
        {
            var values = new HashSet<string> { output };
            var needed = new HashSet<OnnxNode>(ReferenceEqualityComparer.Instance);
            for (int k = order.Count - 1; k >= 0; k--)
                if (order[k].Outputs.Any(values.Contains))
                {
                    needed.Add(order[k]);
                    values.UnionWith(order[k].Inputs);
                }
            return needed;
        }

        private ColdmindException Refuse(OnnxNode node, string why) =>
            new(
                $"{where}: node '{node.Name}' ({node.OpType}{(node.Domain is "" or "ai.onnx" ? "" : $", domain {node.Domain}")}, opset {opset}) cannot be imported: {why}."
            );

        private OnnxTensor Const(OnnxNode node, int index) =>
            index < node.Inputs.Count && _constants.TryGetValue(node.Inputs[index], out var t)
                ? t
                : throw Refuse(node, $"input {index} is not a constant");

        private OnnxTensor? OptionalConst(OnnxNode node, int index) =>
            index < node.Inputs.Count && node.Inputs[index].Length > 0 ? Const(node, index) : null;

        /// <summary>Folds a node whose inputs are all constants (Constant, Identity, DequantizeLinear, Cast, Transpose,
        /// Reshape).</summary>
        private bool Fold(OnnxNode node)
        {
            if (node.OpType != "Constant" && !node.Inputs.Where(i => i.Length > 0).All(_constants.ContainsKey))
                return false;
            if (node.Domain is not ("" or "ai.onnx"))
                return false;
            OnnxTensor? value = node.OpType switch
            {
                "Constant" => ConstantValue(node),
                "Identity" => Const(node, 0),
                "Cast" when node.Int("to", 0) == (long)OnnxDataType.Float => FloatTensor(
                    Const(node, 0).ToFloats(),
                    Const(node, 0).Dims
                ),
                "DequantizeLinear" => Dequantize(node),
                "Transpose" when Const(node, 0).Dims.Length == 2 && node.Ints("perm") is null or [1, 0] => Transposed(
                    Const(node, 0)
                ),
                "Reshape" => Reshaped(node),
                _ => null,
            };
            if (value == null)
                return false;
            _constants[node.Outputs[0]] = value with { Name = node.Outputs[0] };
            return true;
        }

        private static OnnxTensor FloatTensor(float[] values, params long[] dims) => OnnxTensor.Of("", values, dims);

        private OnnxTensor ConstantValue(OnnxNode node)
        {
            if (node.Attribute("value") is { Tensor: { } t })
                return t;
            if (node.Attribute("value_float") is { Type: OnnxAttributeType.Float } f)
                return FloatTensor([f.Float]);
            if (node.Attribute("value_floats") is { Type: OnnxAttributeType.Floats } fs)
                return FloatTensor(fs.Floats, fs.Floats.Length);
            if (node.Attribute("value_int") is { Type: OnnxAttributeType.Int } i)
                return OnnxTensor.Of("", new long[] { i.Int });
            if (node.Attribute("value_ints") is { Type: OnnxAttributeType.Ints } ints)
                return OnnxTensor.Of("", ints.Ints, ints.Ints.Length);
            throw Refuse(node, "it holds no value Coldmind reads");
        }

        /// <summary>y = (x − zero point) · scale, per tensor, per axis or in blocks along the axis.</summary>
        private OnnxTensor Dequantize(OnnxNode node)
        {
            var x = Const(node, 0);
            var q = x.ToInt64();
            var scale = Const(node, 1).ToFloats();
            var zero = OptionalConst(node, 2)?.ToInt64();
            int rank = x.Dims.Length;
            long axis = node.Int("axis", 1),
                block = node.Int("block_size", 0);
            if (axis < 0)
                axis += rank;
            var y = new float[q.Length];
            if (scale.Length == 1)
                for (int i = 0; i < y.Length; i++)
                    y[i] = (q[i] - (zero?[0] ?? 0)) * scale[0];
            else
            {
                if (axis < 0 || axis >= rank)
                    throw Refuse(node, $"axis {axis} does not fit its rank-{rank} input");
                long inner = x.Dims.Skip((int)axis + 1).Aggregate(1L, (a, d) => a * d),
                    length = x.Dims[axis];
                long blocks = block > 0 ? (length + block - 1) / block : length;
                if (scale.Length * length != q.Length * blocks || (zero != null && zero.Length != scale.Length))
                    throw Refuse(
                        node,
                        $"its {scale.Length} scales do not fit its input of shape [{string.Join(", ", x.Dims)}]"
                    );
                for (long i = 0; i < y.Length; i++)
                {
                    long a = i / inner % length,
                        outer = i / (inner * length);
                    long s = (outer * blocks + (block > 0 ? a / block : a)) * inner + i % inner;
                    y[i] = (q[i] - (zero?[s] ?? 0)) * scale[s];
                }
            }
            return FloatTensor(y, x.Dims);
        }

        private static OnnxTensor Transposed(OnnxTensor t)
        {
            var v = t.ToFloats();
            int rows = (int)t.Dims[0],
                cols = (int)t.Dims[1];
            var y = new float[v.Length];
            for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                y[c * rows + r] = v[r * cols + c];
            return FloatTensor(y, [cols, rows]);
        }

        private OnnxTensor? Reshaped(OnnxNode node)
        {
            var x = Const(node, 0);
            var dims = Const(node, 1).ToInt64();
            if (dims.Count(d => d == -1) > 1 || dims.Any(d => d < -1))
                return null;
            long known = dims.Select((d, i) => d == 0 && i < x.Dims.Length ? x.Dims[i] : d)
                .Where(d => d > 0)
                .Aggregate(1L, (a, d) => a * d);
            var result = dims.Select(
                    (d, i) =>
                        d == 0 && i < x.Dims.Length ? x.Dims[i]
                        : d == -1 ? (known == 0 ? 0 : x.Count / known)
                        : d
                )
                .ToArray();
            return result.Aggregate(1L, (a, d) => a * d) == x.Count ? x with { Dims = result } : null;
        }

        /// <summary>Adds the node to the stack; returns true when it ends the classifier (Softmax).</summary>
        private bool Apply(OnnxNode node)
        {
            switch (node.OpType)
            {
                case "Gemm":
                    Gemm(node);
                    break;
                case "MatMul":
                    var b = Const(node, 1);
                    if (b.Dims.Length != 2)
                        throw Refuse(node, "its weight is not a matrix");
                    AddLinear(node, Transposed(b), null, 1f);
                    break;
                case "Conv":
                    Conv(node);
                    break;
                case "BatchNormalization":
                    BatchNorm(node);
                    break;
                case "Add" or "Sub" or "Mul" or "Div":
                    Elementwise(node);
                    break;
                case "Relu" or "Sigmoid" or "Tanh":
                    Add(node.OpType.ToLowerInvariant(), Shape);
                    break;
                case "Gelu":
                    // Coldmind's GELU is the tanh form; approximate="none" (erf) differs from it by at most 1e-3
                    Add("gelu", Shape);
                    break;
                case "MaxPool" or "AveragePool":
                    Pool(node);
                    break;
                case "GlobalAveragePool":
                    RequireImage(node);
                    Add("globalavgpool", [Shape[0], 1, 1]);
                    break;
                case "Flatten":
                    if (node.Int("axis", 1) != 1)
                        throw Refuse(node, "only axis 1 (keep the batch) is supported");
                    Add("flatten", [Tensors.Shape.Numel(Shape)]);
                    break;
                case "Reshape":
                    var target = Const(node, 1).ToInt64();
                    int numel = Tensors.Shape.Numel(Shape);
                    if (
                        target.Length != 2
                        || target[0] is not (0 or 1 or -1)
                        || !(target[1] == numel || (target[1] == -1 && target[0] != -1))
                    )
                        throw Refuse(
                            node,
                            $"only a reshape to (batch, {Tensors.Shape.Numel(Shape)}) is supported, not [{string.Join(", ", target)}]"
                        );
                    Add("flatten", [Tensors.Shape.Numel(Shape)]);
                    break;
                case "Dropout" or "Identity":
                    break;
                case "Pad":
                    // torch exports AvgPool2d as Pad + AveragePool; zero padding is no padding
                    if (Const(node, 1).ToInt64().Any(p => p != 0) || (node.String("mode") ?? "constant") != "constant")
                        throw Refuse(node, "only zero-size padding is supported (pad inside Conv instead)");
                    break;
                case "Softmax" or "LogSoftmax":
                    return true;
                default:
                    throw Refuse(node, "Coldmind does not import this operator");
            }
            if (
                node.Outputs.Count > 1
                && node.OpType != "Dropout"
                && node.Outputs.Skip(1).Any(o => o.Length > 0 && graph.Nodes.Any(n => n.Inputs.Contains(o)))
            )
                throw Refuse(node, "its extra outputs are used");
            return false;
        }

        private Layer Add(string text, int[] output)
        {
            var layer = new Layer(text, output);
            _layers.Add(layer);
            return layer;
        }

        private void RequireImage(OnnxNode node)
        {
            if (Shape.Length != 3)
                throw Refuse(
                    node,
                    $"it needs images (channels, height, width), it gets shape {Tensors.Shape.Format(Shape)}"
                );
        }

        private void Gemm(OnnxNode node)
        {
            if (node.Int("transA", 0) != 0)
                throw Refuse(node, "transA = 1 is not supported");
            var b = Const(node, 1);
            if (b.Dims.Length != 2)
                throw Refuse(node, "its weight is not a matrix");
            var w = node.Int("transB", 0) == 1 ? b : Transposed(b);
            AddLinear(node, w, OptionalConst(node, 2), node.Float("alpha", 1f), node.Float("beta", 1f));
        }

        /// <summary>A linear layer with weight (out, in), scaled by alpha; the bias C (scalar or out values) scaled by
        /// beta.</summary>
        private void AddLinear(OnnxNode node, OnnxTensor weight, OnnxTensor? c, float alpha, float beta = 1f)
        {
            if (Shape.Length != 1)
                throw Refuse(
                    node,
                    $"it needs a flat input, it gets shape {Tensors.Shape.Format(Shape)} (flatten first)"
                );
            int outputs = (int)weight.Dims[0];
            if (weight.Dims[1] != Shape[0])
                throw Refuse(node, $"its weight takes {weight.Dims[1]} inputs, the previous layer gives {Shape[0]}");
            var layer = Add($"linear {outputs}", [outputs]);
            layer.Weight = weight.ToFloats().Select(v => v * alpha).ToArray();
            layer.WeightShape = [outputs, (int)weight.Dims[1]];
            layer.Bias = new float[outputs];
            if (c != null)
                AddToBias(node, layer, c.ToFloats(), beta);
        }

        private void AddToBias(OnnxNode node, Layer layer, float[] c, float factor)
        {
            int n = layer.Bias!.Length;
            if (c.Length != 1 && c.Length != n)
                throw Refuse(node, $"its {c.Length} bias values do not fit {n} outputs");
            for (int i = 0; i < n; i++)
                layer.Bias[i] += factor * c[c.Length == 1 ? 0 : i];
        }

        private void Conv(OnnxNode node)
        {
            RequireImage(node);
            var w = Const(node, 1);
            if (w.Dims.Length != 4 || w.Dims[1] != Shape[0])
                throw Refuse(node, $"its weight [{string.Join(", ", w.Dims)}] does not fit {Shape[0]} input channels");
            if (node.Int("group", 1) != 1)
                throw Refuse(node, "grouped and depthwise convolutions are not supported");
            if (node.String("auto_pad") is { } ap && ap is not ("NOTSET" or ""))
                throw Refuse(node, $"auto_pad {ap} is not supported; export with explicit pads");
            int k = (int)w.Dims[2];
            var strides = node.Ints("strides") ?? [1, 1];
            var pads = node.Ints("pads") ?? [0, 0, 0, 0];
            var dilations = node.Ints("dilations") ?? [1, 1];
            if (
                w.Dims[3] != k
                || strides.Length != 2
                || strides[0] != strides[1]
                || pads.Length != 4
                || pads.Any(p => p != pads[0])
                || dilations.Any(d => d != 1)
            )
                throw Refuse(
                    node,
                    "Coldmind imports square kernels with equal strides, equal padding on all sides and no dilation"
                );
            int o = (int)w.Dims[0],
                s = (int)strides[0],
                p = (int)pads[0];
            int oh = (Shape[1] + 2 * p - k) / s + 1,
                ow = (Shape[2] + 2 * p - k) / s + 1;
            if (oh < 1 || ow < 1 || s < 1 || p < 0)
                throw Refuse(node, $"the kernel does not fit its {Shape[1]}×{Shape[2]} input");
            int c = Shape[0];
            var layer = Add($"conv {o} {k} {s} {p}", [o, oh, ow]);
            layer.Weight = w.ToFloats();
            layer.WeightShape = [o, c, k, k];
            layer.Bias = OptionalConst(node, 2)?.ToFloats() ?? new float[o];
            if (layer.Bias.Length != o)
                throw Refuse(node, $"its {layer.Bias.Length} biases do not fit {o} channels");
        }

        private void Pool(OnnxNode node)
        {
            RequireImage(node);
            var kernel = node.Ints("kernel_shape") ?? throw Refuse(node, "it has no kernel_shape");
            var strides = node.Ints("strides") ?? [1, 1];
            bool max = node.OpType == "MaxPool";
            if (
                kernel.Length != 2
                || kernel[0] != kernel[1]
                || strides.Length != 2
                || strides[0] != strides[1]
                || (node.Ints("pads") ?? []).Any(p => p != 0)
                || node.Int("ceil_mode", 0) != 0
                || (node.Ints("dilations") ?? []).Any(d => d != 1)
                || (node.String("auto_pad") is { } ap && ap is not ("NOTSET" or "VALID" or ""))
                || (!max && strides[0] != kernel[0])
            )
                throw Refuse(
                    node,
                    "Coldmind imports square windows without padding or ceil mode (average pools with stride equal to the window)"
                );
            int k = (int)kernel[0],
                s = (int)strides[0];
            if (k > Shape[1] || k > Shape[2])
                throw Refuse(node, $"its {k}×{k} window does not fit a {Shape[1]}×{Shape[2]} input");
            if (max)
                Add($"maxpool {k} {s}", [Shape[0], (Shape[1] - k) / s + 1, (Shape[2] - k) / s + 1]);
            else
                Add($"avgpool {k}", [Shape[0], Shape[1] / k, Shape[2] / k]);
        }

        /// <summary>y = (x − mean) / √(var + ε) · scale + B per channel: folded into the layer before, or an
        /// elementwise scaling.</summary>
        private void BatchNorm(OnnxNode node)
        {
            var (gamma, beta, mean, variance) = (
                Const(node, 1).ToFloats(),
                Const(node, 2).ToFloats(),
                Const(node, 3).ToFloats(),
                Const(node, 4).ToFloats()
            );
            float eps = node.Float("epsilon", 1e-5f);
            int channels = Shape[0];
            if (new[] { gamma, beta, mean, variance }.Any(v => v.Length != channels))
                throw Refuse(node, $"its statistics do not have {channels} channels");
            var a = new float[channels];
            var c = new float[channels];
            for (int i = 0; i < channels; i++)
            {
                a[i] = gamma[i] / MathF.Sqrt(variance[i] + eps);
                c[i] = beta[i] - mean[i] * a[i];
            }
            ScaleShift(node, a, c);
        }

        /// <summary>Add / Sub / Mul / Div of the chain's value and a constant (either side for Add, Sub and
        /// Mul).</summary>
        private void Elementwise(OnnxNode node)
        {
            bool constFirst = _constants.ContainsKey(node.Inputs[0]);
            var c = Const(node, constFirst ? 0 : 1);
            var values = Broadcast(node, c);
            int n = values.Length;
            var (scale, shift) = (Enumerable.Repeat(1f, n).ToArray(), new float[n]);
            switch (node.OpType)
            {
                case "Add":
                    shift = values;
                    break;
                case "Sub" when constFirst:
                    shift = values;
                    scale = Enumerable.Repeat(-1f, n).ToArray();
                    break;
                case "Sub":
                    shift = values.Select(v => -v).ToArray();
                    break;
                case "Mul":
                    scale = values;
                    break;
                case "Div" when !constFirst:
                    scale = values.Select(v => 1 / v).ToArray();
                    break;
                default:
                    throw Refuse(node, "dividing a constant by the layer's output is not supported");
            }
            ScaleAndShiftElements(node, scale, shift);
        }

        /// <summary>A constant broadcast to one example's shape (its batch axis, if any, of size 1).</summary>
        private float[] Broadcast(OnnxNode node, OnnxTensor c)
        {
            var shape = Shape;
            var dims = c.Dims.ToList();
            if (dims.Count == shape.Length + 1)
            {
                if (dims[0] != 1)
                    throw Refuse(node, "its constant varies along the batch");
                dims.RemoveAt(0);
            }
            if (dims.Count > shape.Length)
                throw Refuse(
                    node,
                    $"its constant [{string.Join(", ", c.Dims)}] does not broadcast to {Tensors.Shape.Format(shape)}"
                );
            while (dims.Count < shape.Length)
                dims.Insert(0, 1);
            for (int i = 0; i < shape.Length; i++)
                if (dims[i] != 1 && dims[i] != shape[i])
                    throw Refuse(
                        node,
                        $"its constant [{string.Join(", ", c.Dims)}] does not broadcast to {Tensors.Shape.Format(shape)}"
                    );
            var v = c.ToFloats();
            var result = new float[Tensors.Shape.Numel(shape)];
            for (int i = 0; i < result.Length; i++)
            {
                long source = 0,
                    rest = i;
                for (int axis = shape.Length - 1, sourceStride = 1; axis >= 0; axis--)
                {
                    long coordinate = rest % shape[axis];
                    rest /= shape[axis];
                    if (dims[axis] != 1)
                        source += coordinate * sourceStride;
                    sourceStride *= (int)dims[axis];
                }
                result[i] = v[source];
            }
            return result;
        }

        /// <summary>Per-channel (or per-feature) y = x·a + c: into the conv or linear layer just added, else an affine
        /// layer.</summary>
        private void ScaleShift(OnnxNode node, float[] a, float[] c)
        {
            var shape = Shape;
            int per = Tensors.Shape.Numel(shape) / shape[0];
            var scale = new float[Tensors.Shape.Numel(shape)];
            var shift = new float[scale.Length];
            for (int i = 0; i < scale.Length; i++)
                (scale[i], shift[i]) = (a[i / per], c[i / per]);
            ScaleAndShiftElements(node, scale, shift);
        }

        /// <summary>
        /// Elementwise y = x·scale + shift (both of the example's shape): folded into the layer just added when it is a
        /// conv or linear layer and the scale is the same across each output channel, merged into an affine layer just
        /// added, else a new affine layer.
        /// </summary>
        private void ScaleAndShiftElements(OnnxNode node, float[] scale, float[] shift)
        {
            var last = _layers.Count > 0 ? _layers[^1] : null;
            if (
                last?.Weight != null
                && last.Bias != null
                && PerChannel(scale, last.Bias.Length) is { } a
                && PerChannel(shift, last.Bias.Length) is { } c
            )
            {
                int per = last.Weight.Length / a.Length;
                for (int i = 0; i < last.Weight.Length; i++)
                    last.Weight[i] *= a[i / per];
                for (int o = 0; o < a.Length; o++)
                    last.Bias[o] = last.Bias[o] * a[o] + c[o];
                return;
            }
            if (last is { Text: "affine" })
            {
                for (int i = 0; i < scale.Length; i++)
                    (last.Scale![i], last.Shift![i]) = (last.Scale[i] * scale[i], last.Shift[i] * scale[i] + shift[i]);
                return;
            }
            var layer = Add("affine", Shape);
            (layer.Scale, layer.Shift) = (scale, shift);
        }

        /// <summary>The values per output channel when <paramref name="values"/> (one example) is constant within each
        /// of <paramref name="channels"/> channels.</summary>
        private static float[]? PerChannel(float[] values, int channels)
        {
            int per = values.Length / channels;
            var result = new float[channels];
            for (int i = 0; i < values.Length; i++)
            {
                if (i % per == 0)
                    result[i / per] = values[i];
                else if (values[i] != result[i / per])
                    return null;
            }
            return result;
        }

        /// <summary>
        /// Puts raw = scaled · divisor + offset in front, so the graph (which expects raw features) takes Coldmind's
        /// scaled ones; merged with the graph's own first scaling, and dropped when they cancel (within 1e-6).
        /// </summary>
        public void Prepend(InputScaling scaling)
        {
            PrependScaling(scaling);
            // a flat input for image data: the stack takes the data's images and flattens them first
            if (
                _inputShape.Length == 1
                && scaling.SampleShape.Length > 1
                && Tensors.Shape.Numel(scaling.SampleShape) == _inputShape[0]
            )
            {
                _layers.Insert(0, new Layer("flatten", _inputShape));
                _inputShape = scaling.SampleShape;
            }
        }

        private void PrependScaling(InputScaling scaling)
        {
            if (scaling.IsIdentity)
                return;
            var (offset, divisor) = scaling.Expand(Tensors.Shape.Numel(_inputShape));
            if (_layers.Count > 0 && _layers[0] is { Text: "affine" } first)
            {
                for (int i = 0; i < offset.Length; i++)
                    (first.Scale![i], first.Shift![i]) = (
                        divisor[i] * first.Scale[i],
                        offset[i] * first.Scale[i] + first.Shift[i]
                    );
                if (first.Scale!.All(v => MathF.Abs(v - 1) <= 1e-6f) && first.Shift!.All(v => MathF.Abs(v) <= 1e-6f))
                    _layers.RemoveAt(0);
                return;
            }
            var layer = new Layer("affine", _inputShape) { Scale = divisor, Shift = offset };
            _layers.Insert(0, layer);
        }

        public (ClassifierSpec, Dictionary<string, Tensor>) ToStack()
        {
            var state = new Dictionary<string, Tensor>();
            for (int i = 0; i < _layers.Count; i++)
            {
                var l = _layers[i];
                if (l.Weight != null)
                    state[$"layers.{i}.weight"] = Tensor.FromArray(l.Weight, l.WeightShape);
                if (l.Bias != null)
                    state[$"layers.{i}.bias"] = Tensor.FromArray(l.Bias, l.Bias.Length);
                if (l.Norm != null)
                    state[$"layers.{i}.norm.weight"] = Tensor.FromArray(l.Norm, l.Norm.Length);
                var shape = i == 0 ? _inputShape : _layers[i - 1].Output;
                if (l.Scale != null)
                    state[$"layers.{i}.scale"] = Tensor.FromArray(l.Scale, shape);
                if (l.Shift != null)
                    state[$"layers.{i}.shift"] = Tensor.FromArray(l.Shift, shape);
            }
            if (state.Values.Any(t => !t.ToArray().All(float.IsFinite)))
                throw new ColdmindException($"{where}: a weight is not a finite number.");
            var spec = ClassifierSpec.ForStack(_inputShape, Shape[0], string.Join("; ", _layers.Select(l => l.Text)));
            return (spec, state);
        }
    }
}
