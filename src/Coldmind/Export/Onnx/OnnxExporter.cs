using Coldmind.Runtime.Classifier;
using Coldmind.Models;
using System.Globalization;
using Coldmind.Data;
using Coldmind.Formats;
using Coldmind.Formats.Onnx;
using Coldmind.Nn;
using Coldmind.Quantization;
using Coldmind.Tensors;
using static Coldmind.Formats.Onnx.OnnxAttribute;

namespace Coldmind.Export.Onnx;

/// <summary>
/// Writes a Coldmind classifier as an ONNX graph that ONNX Runtime runs with nothing else:
/// input "input" takes the raw features a user has (batch, features) or (batch, channels, height, width); the
/// scaling Coldmind applied in training is the graph's first nodes (Sub, Div); output "logits", and
/// "probabilities" = Softmax(logits / T) with the calibration temperature T the model was saved with.
/// Float layers become Gemm / Conv / pools; post-training quantized layers DequantizeLinear of their codes
/// (INT4 or INT8, per tensor or in blocks of the scheme's group along the input axis) into MatMul; a BitLinear
/// layer its RMSNorm, the per-example absmax int8 QuantizeLinear/DequantizeLinear of the activations, and
/// DequantizeLinear of its trits (INT8, one scale) into MatMul — the values Coldmind computes with, so the
/// graph is lossless. Opset 21 (blocked and INT4 DequantizeLinear), IR version 10.
/// </summary>
public static class OnnxExporter
{
    public const int Opset = OnnxOpset.Newest, IrVersion = 10;

    /// <summary>
    /// The classifier in <paramref name="path"/>: a compact classifier (shrink), a checkpoint of `train` (MLP,
    /// CNN; quantized by its coldmind.ptq scheme when `ptq --save` wrote it) or of `import`.
    /// </summary>
    public static OnnxModel Export(string path)
    {
        var opened = ModelFile.Open(path);
        var file = opened as ClassifierFile ?? throw opened.NotA("a classifier to export");
        if (file.IsCompact) return Export(CompactClassifier.Load(file), file.File.Metadata);
        var spec = file.Provenance.Spec!;
        var model = spec.Build(new Rng(0));
        model.LoadState(file.File.ToTensors());
        return Export(model, spec, file.File.Metadata);
    }

    /// <summary>
    /// A trained network: an MLP through its compact form, any other layer by layer. Quantized by `ptq --save`
    /// (coldmind.ptq), the MLP's layers are compiled with the scheme, the others' Conv and Gemm weights are written
    /// as their codes and DequantizeLinear (the values `ptq` evaluated, to float rounding of the re-derived scales).
    /// </summary>
    public static OnnxModel Export(Module model, ClassifierSpec spec, IReadOnlyDictionary<string, string> metadata)
    {
        var scheme = Provenance.Read(metadata, spec.Describe()).Ptq is { } name ? PtqScheme.Parse(name) : null;
        if (spec.Kind == ClassifierSpec.Mlp)
        {
            int layers = model.Modules().Count(m => m is Linear or BitLinear);
            return Export(
                CompactClassifier.Compile(
                    model,
                    metadata,
                    scheme == null ? null : Enumerable.Repeat<PtqScheme?>(scheme, layers).ToList()
                ),
                metadata
            );
        }
        var g = new OnnxGraphBuilder();
        var shape = spec.InputShape;
        string x = Scaling(g, TrainingData.ScalingOf(Provenance.Read(metadata, spec.Describe())), "input", shape);
        foreach (var m in model.Modules())
            x = m switch
            {
                Conv2d c => g.Node(
                    "Conv",
                    [x, Matrix(g, c.Weight, scheme), Weight(g, c.Bias ?? Tensor.Zeros(c.Weight.Shape[0]))],
                    [
                        Of("kernel_shape", [c.Weight.Shape[2], c.Weight.Shape[3]]),
                        Of("strides", [c.Stride, c.Stride]),
                        Of("pads", [c.Padding, c.Padding, c.Padding, c.Padding]),
                    ]
                ),
                MaxPool2d p => g.Node(
                    "MaxPool",
                    [x],
                    [Of("kernel_shape", [p.Kernel, p.Kernel]), Of("strides", [p.Stride, p.Stride])]
                ),
                AvgPool2d p => g.Node(
                    "AveragePool",
                    [x],
                    [Of("kernel_shape", [p.Kernel, p.Kernel]), Of("strides", [p.Kernel, p.Kernel])]
                ),
                GlobalAvgPool => g.Node("GlobalAveragePool", [x]),
                Flatten => g.Node("Flatten", [x], [Of("axis", 1L)]),
                Linear l => g.Node(
                    "Gemm",
                    [x, Matrix(g, l.Weight, scheme), Weight(g, l.Bias ?? Tensor.Zeros(l.Weight.Shape[0]))],
                    [Of("transB", 1L)]
                ),
                Affine a => g.Node("Add", [g.Node("Mul", [x, Weight(g, a.Scale)]), Weight(g, a.Shift)]),
                BitLinear b => Ternary(g, x, TernaryOf(b)),
                ActivationLayer a => Activation(g, x, a.Kind),
                Dropout or Sequential or Nn.Mlp or SmallCnn or LayerStack or RmsNorm => x, // a BitLinear's norm is in its export
                _ => throw new ColdmindException($"A {m.GetType().Name} layer has no ONNX export."),
            };
        return Finish(g, x, shape, spec.Classes, metadata);
    }

    /// <summary>A compact classifier (an MLP: float, sparse, quantized and ternary layers).</summary>
    public static OnnxModel Export(CompactClassifier model, IReadOnlyDictionary<string, string> metadata)
    {
        var g = new OnnxGraphBuilder();
        string x = Scaling(g, TrainingData.ScalingOf(Provenance.Read(metadata, model.Describe())), "input", [model.Inputs]);
        foreach (var layer in model.Parts())
        {
            x = layer switch
            {
                CompactClassifier.FloatParts f => g.Node(
                    "Gemm",
                    [x, g.Constant("weight", f.Weight, f.Rows, f.Columns)],
                    [Of("transB", 1L)]
                ),
                CompactClassifier.QuantizedParts q => g.Node("MatMul", [x, Dequantized(g, q)]),
                CompactClassifier.TernaryParts t => Ternary(g, x, t),
                _ => throw new ColdmindException($"Layer {layer.GetType().Name} has no ONNX export."),
            };
            if (layer.Bias != null)
                x = g.Node("Add", [x, g.Constant("bias", layer.Bias, layer.Rows)]);
            if (layer.Relu)
                x = g.Node("Relu", [x]);
        }
        return Finish(g, x, [model.Inputs], model.Classes, metadata);
    }

    /// <summary>scaled = (raw − offset) / divisor, as the data loader computes it; constants of the example's shape or
    /// scalars.</summary>
    private static string Scaling(OnnxGraphBuilder g, InputScaling scaling, string input, int[] shape)
    {
        long[] dims = scaling.Offset.Length == 1 ? [] : shape.Select(d => (long)d).ToArray();
        if (scaling.Offset.Length != 1 && scaling.Offset.Length != Tensors.Shape.Numel(shape))
            throw new ColdmindException(
                $"The data's scaling has {scaling.Offset.Length} features; the model takes {Tensors.Shape.Numel(shape)}."
            );
        string x = input;
        if (scaling.Offset.Any(o => o != 0))
            x = g.Node("Sub", [x, g.Constant("offset", scaling.Offset, dims)]);
        if (scaling.Divisor.Any(d => d != 1))
            x = g.Node("Div", [x, g.Constant("divisor", scaling.Divisor, dims)]);
        return x;
    }

    /// <summary>Outputs logits and Softmax(logits / T); the graph's input and output shapes; coldmind.* metadata
    /// kept.</summary>
    private static OnnxModel Finish(
        OnnxGraphBuilder g,
        string x,
        int[] inputShape,
        int classes,
        IReadOnlyDictionary<string, string> metadata
    )
    {
        string logits = g.Node("Identity", [x], output: "logits");
        var provenance = Provenance.Read(metadata, "the model");
        float temperature = provenance.Temperature ?? 1f;
        string scaled = temperature == 1 ? logits : g.Node("Div", [logits, g.Constant("temperature", [temperature])]);
        g.Node("Softmax", [scaled], [Of("axis", -1L)], output: "probabilities");
        var graph = g.Build(
            "coldmind",
            [new OnnxValue("input", OnnxDataType.Float, [null, .. inputShape.Select(d => (long?)d)])],
            [
                new OnnxValue("logits", OnnxDataType.Float, [null, classes]),
                new OnnxValue("probabilities", OnnxDataType.Float, [null, classes]),
            ]
        );
        // what the model says of itself travels with it, less what described its compact form
        var meta = (provenance with { Format = null, Layers = null, Other = new Dictionary<string, string>() }).ToMetadata();
        return new OnnxModel(IrVersion, [new OnnxOpset("", Opset)], "coldmind", graph, meta);
    }

    private static string Weight(OnnxGraphBuilder g, Tensor t) =>
        g.Constant("weight", t.ToArray(), t.Shape.Select(d => (long)d).ToArray());

    /// <summary>
    /// A Conv or Gemm weight (out, …): float, or under <paramref name="scheme"/> its codes (out, rest) and scales
    /// (out, groups) dequantized in blocks along the row, reshaped back to the weight's shape.
    /// </summary>
    private static string Matrix(OnnxGraphBuilder g, Tensor t, PtqScheme? scheme)
    {
        if (scheme == null)
            return Weight(g, t);
        var dims = t.Shape.Select(d => (long)d).ToArray();
        int rows = t.Shape[0],
            rowLength = t.Numel / rows;
        var (codes, scales) = scheme.Quantize(t.ToArray(), rowLength);
        bool int4 = scheme.Method == PtqMethod.Int4;
        if (scheme.GroupSize == 0)
            return g.Node("DequantizeLinear", [g.Codes("codes", codes, int4, dims), g.Constant("scale", [scales[0]])]);
        string w = g.Node(
            "DequantizeLinear",
            [
                g.Codes("codes", codes, int4, rows, rowLength),
                g.Constant("scales", scales, rows, scheme.GroupsPerRow(rowLength)),
            ],
            [Of("axis", 1L), Of("block_size", (long)scheme.GroupSize)]
        );
        return dims.Length == 2 ? w : g.Node("Reshape", [w, g.Constant("shape", dims, dims.Length)]);
    }

    private static string Activation(OnnxGraphBuilder g, string x, Nn.Activation kind) =>
        kind switch
        {
            Nn.Activation.Relu => g.Node("Relu", [x]),
            Nn.Activation.Sigmoid => g.Node("Sigmoid", [x]),
            Nn.Activation.Tanh => g.Node("Tanh", [x]),
            // Coldmind's GELU is the tanh approximation
            Nn.Activation.Gelu => g.Node(
                "Gelu",
                [x],
                [new OnnxAttribute("approximate", OnnxAttributeType.String, String: "tanh")]
            ),
            Nn.Activation.Silu => g.Node("Mul", [x, g.Node("Sigmoid", [x])]),
            _ => throw new ColdmindException($"The {kind} activation has no ONNX export."),
        };

    /// <summary>A BitLinear module's forward as the compact runtime's ternary layer: its latent weights ternarized by
    /// absmean.</summary>
    private static CompactClassifier.TernaryParts TernaryOf(BitLinear b)
    {
        var norm = b.Norm ?? throw new ColdmindException("Only BitLinear layers with their own norm export to ONNX.");
        var trits = new sbyte[b.Weight.Numel];
        float scale = BitNetQuantizer.Ternarize(b.Weight.ToArray(), trits);
        return new CompactClassifier.TernaryParts(
            b.Weight.Shape[0],
            b.Weight.Shape[1],
            null,
            false,
            trits,
            scale,
            norm.Weight.ToArray(),
            norm.Eps
        );
    }

    /// <summary>DequantizeLinear(codesᵀ (columns, rows), scales) — the weight MatMul takes, as Coldmind computes
    /// it.</summary>
    private static string Dequantized(OnnxGraphBuilder g, CompactClassifier.QuantizedParts q)
    {
        var (rows, cols, scheme) = (q.Rows, q.Columns, q.Scheme);
        var codes = new sbyte[q.Codes.Length];
        for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            codes[c * rows + r] = q.Codes[r * cols + c];
        string w = g.Codes("codes", codes, scheme.Method == PtqMethod.Int4, cols, rows);
        if (scheme.GroupSize == 0)
            return g.Node("DequantizeLinear", [w, g.Constant("scale", [q.Scales[0]])]);
        int groups = scheme.GroupsPerRow(cols);
        var scales = new float[groups * rows]; // (groups, rows): block b of input column c is c / group size
        for (int r = 0; r < rows; r++)
        for (int b = 0; b < groups; b++)
            scales[b * rows + r] = q.Scales[r * groups + b];
        return g.Node(
            "DequantizeLinear",
            [w, g.Constant("scales", scales, groups, rows)],
            [Of("axis", 0L), Of("block_size", (long)scheme.GroupSize)]
        );
    }

    /// <summary>
    /// BitLinear: h = x · (1 / √(mean(x²) + ε)) · gain; step = max|h| / 127 per example; q = QuantizeLinear(h, step)
    /// (int8); y = DequantizeLinear(q, step) @ DequantizeLinear(tritsᵀ, scale).
    /// </summary>
    private static string Ternary(OnnxGraphBuilder g, string x, CompactClassifier.TernaryParts t)
    {
        string lastAxis = g.Constant("axes", [-1L], 1);
        string meanSquare = g.Node("ReduceMean", [g.Node("Mul", [x, x]), lastAxis], [Of("keepdims", 1L)]);
        string inverse = g.Node(
            "Reciprocal",
            [g.Node("Sqrt", [g.Node("Add", [meanSquare, g.Constant("eps", [t.Eps])])])]
        );
        string h = g.Node("Mul", [g.Node("Mul", [x, inverse]), g.Constant("gain", t.Norm, t.Columns)]);
        string absMax = g.Node("ReduceMax", [g.Node("Abs", [h]), lastAxis], [Of("keepdims", 0L)]);
        // an all-zero example quantizes to zeros under any step; the floor only keeps the division finite
        string step = g.Node(
            "Max",
            [g.Node("Div", [absMax, g.Constant("int8_max", [127f])]), g.Constant("step_floor", [1e-30f])]
        );
        string q = g.Node("QuantizeLinear", [h, step], [Of("axis", 0L), Of("output_dtype", (long)OnnxDataType.Int8)]);
        string activations = g.Node("DequantizeLinear", [q, step], [Of("axis", 0L)]);
        var trits = new sbyte[t.Trits.Length];
        for (int r = 0; r < t.Rows; r++)
        for (int c = 0; c < t.Columns; c++)
            trits[c * t.Rows + r] = t.Trits[r * t.Columns + c];
        string w = g.Node(
            "DequantizeLinear",
            [g.Codes("trits", trits, false, t.Columns, t.Rows), g.Constant("scale", [t.Scale])]
        );
        return g.Node("MatMul", [activations, w]);
    }
}
