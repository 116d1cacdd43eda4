using System.Globalization;
using Coldmind.Kernels;
using Coldmind.Models;
using Coldmind.Nn;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Runtime.Classifier;

/// <summary>
/// A trained MLP compiled for inference one example at a time, in the form that makes pruning and ternary
/// weights pay in bytes and time: each layer is dense float32, sparse float32 (CSR, when at least 40 % of its
/// weights are zero), sparse ternary (a <see cref="BitLinear"/>: RMSNorm, int8 activations, the nonzero
/// trits' columns only) or quantized after training (a <see cref="PtqScheme"/>'s packed codes and f16 group
/// scales, dense or CSR, whichever is smaller). Saved as safetensors: dense weights as F32, CSR as PyTorch's
/// crow_indices (I32), col_indices (U16) and values, ternary as column indices of the +1 and −1 trits,
/// quantized codes as packed bytes (U8) and scales (F16); the layer list and shapes in the metadata.
/// </summary>
public sealed class CompactClassifier
{
    /// <summary>A sparse float layer pays from this fraction of zeros on (6 bytes a kept weight against 4 a dense one, and gathers).</summary>
    public const double SparseFrom = 0.4;

    private readonly IReadOnlyList<Layer> _layers;
    public IReadOnlyDictionary<string, string> Metadata { get; }

    private CompactClassifier(IReadOnlyList<Layer> layers, IReadOnlyDictionary<string, string> metadata) => (_layers, Metadata) = (layers, metadata);

    public int Inputs => _layers[0].Columns;
    public int Classes => _layers[^1].Rows;
    public long Parameters => _layers.Sum(l => (long)l.Rows * l.Columns + l.Rows * (l.Bias != null ? 1 : 0) + (l is TernaryLayer t ? t.NormWeight.Length : 0));
    public long NonZeroParameters => _layers.Sum(l => l.NonZeros + (l.Bias?.Length ?? 0) + (l is TernaryLayer t ? t.NormWeight.Length : 0));
    public long WeightBytes => _layers.Sum(l => l.Bytes);
    /// <summary>
    /// Each layer's kind, shape, kept weights and stored bytes: what the cost model prices. Kinds: dense, sparse,
    /// ternary, or "quantized:" and the method (int8, int4, int2, ternary, binary), then ":sparse" when stored so.
    /// </summary>
    public IEnumerable<(string Kind, int Rows, int Columns, long NonZeros, long Bytes)> LayerShapes() =>
        _layers.Select(l => (l.Kind, l.Rows, l.Columns, l.NonZeros, l.Bytes + 4L * (l.Bias?.Length ?? 0) + (l is TernaryLayer t ? 4L * t.NormWeight.Length : 0)));

    public string Describe() => string.Join(" → ", _layers.Select(l => $"{l.Kind} {l.Columns}×{l.Rows}"));

    /// <summary>
    /// Compiles an <see cref="Mlp"/>: its Linear and BitLinear layers in order, ReLU between them. With
    /// <paramref name="schemes"/> (one entry per Linear or BitLinear layer, null for none) a Linear layer's weights
    /// are rounded by its scheme after training; BitLinear layers are ternary already.
    /// </summary>
    public static CompactClassifier Compile(Module mlp, IReadOnlyDictionary<string, string>? metadata = null, IReadOnlyList<PtqScheme?>? schemes = null)
    {
        var layers = new List<Layer>();
        var modules = mlp.Modules().ToList();
        int linear = modules.Count(m => m is Linear or BitLinear);
        if (schemes != null && schemes.Count != linear)
            throw new ColdmindException($"{schemes.Count} quantization schemes for {linear} layers.");
        for (int i = 0; i < modules.Count; i++)
        {
            bool relu = modules.Skip(i + 1).TakeWhile(m => m is not (Linear or BitLinear)).OfType<ActivationLayer>().Any(a => a.Kind == Activation.Relu);
            var scheme = schemes?[layers.Count];
            switch (modules[i])
            {
                case Linear l:
                    var w = l.Weight.ToArray();
                    int rows = l.Weight.Shape[0], cols = l.Weight.Shape[1];
                    layers.Add(scheme != null ? QuantizedLayer.Compile(w, rows, cols, scheme, l.Bias?.ToArray(), relu)
                        : w.Count(v => v == 0) >= SparseFrom * w.Length
                        ? new SparseLayer(SparseMatrix.FromDense(w, rows, cols), l.Bias?.ToArray(), relu)
                        : new DenseLayer(w, rows, cols, l.Bias?.ToArray(), relu));
                    break;
                case BitLinear when scheme != null:
                    throw new ColdmindException($"Layer {layers.Count} is ternary (BitLinear) already; it takes no {scheme.Name} rounding.");
                case BitLinear b:
                    var latent = b.Weight.ToArray();
                    var trits = new sbyte[latent.Length];
                    float scale = BitNetQuantizer.Ternarize(latent, trits);
                    var norm = b.Norm ?? throw new ColdmindException("Only BitLinear layers with their own norm compile to a compact classifier.");
                    layers.Add(new TernaryLayer(SparseTernaryMatrix.FromTrits(trits, b.Weight.Shape[0], b.Weight.Shape[1], scale), norm.Weight.ToArray(), norm.Eps, relu));
                    break;
                case Conv2d:
                    throw new ColdmindException("Compact inference covers MLPs; convolutional models are not compiled yet.");
            }
        }
        if (layers.Count == 0) throw new ColdmindException("The model has no linear layers to compile.");
        return new CompactClassifier(layers, metadata ?? new Dictionary<string, string>());
    }

    /// <summary>
    /// Each layer's weights as an exporter needs them: float (dense or sparse, as a dense rows × columns array),
    /// post-training codes with their scales, or BitLinear's trits with its scale, norm gain and epsilon.
    /// </summary>
    public IEnumerable<LayerParts> Parts() => _layers.Select(l => l switch
    {
        DenseLayer d => new FloatParts(d.Rows, d.Columns, d.Bias, d.Relu, d.Weight),
        SparseLayer s => new FloatParts(s.Rows, s.Columns, s.Bias, s.Relu, Dense(s.Matrix)),
        TernaryLayer t => new TernaryParts(t.Rows, t.Columns, t.Bias, t.Relu, t.Trits(), t.Matrix.Scale, t.NormWeight, t.Eps),
        QuantizedLayer q => (LayerParts)new QuantizedParts(q.Rows, q.Columns, q.Bias, q.Relu, q.Scheme, q.Codes(), q.Scales),
        _ => throw new InvalidOperationException($"Unknown layer {l.Kind}."),
    });

    /// <summary>A CSR matrix as a dense (rows, columns) array.</summary>
    private static float[] Dense(SparseMatrix m)
    {
        var w = new float[(long)m.Rows * m.Columns];
        for (int r = 0; r < m.Rows; r++)
            for (int k = m.RowStart[r]; k < m.RowStart[r + 1]; k++) w[r * m.Columns + m.ColumnIndex[k]] = m.Values[k];
        return w;
    }

    public abstract record LayerParts(int Rows, int Columns, float[]? Bias, bool Relu);
    /// <summary>Weight (rows, columns).</summary>
    public sealed record FloatParts(int Rows, int Columns, float[]? Bias, bool Relu, float[] Weight) : LayerParts(Rows, Columns, Bias, Relu);
    /// <summary>Codes (rows, columns); weight[r, c] = Scales[Scheme.ScaleIndex(r, c, Scheme.GroupsPerRow(Columns))] · code.</summary>
    public sealed record QuantizedParts(int Rows, int Columns, float[]? Bias, bool Relu, PtqScheme Scheme, sbyte[] Codes, float[] Scales)
        : LayerParts(Rows, Columns, Bias, Relu);
    /// <summary>y = Scale · trits (rows, columns) · int8(RMSNorm(x, Norm, Eps)), BitLinear's forward.</summary>
    public sealed record TernaryParts(int Rows, int Columns, float[]? Bias, bool Relu, sbyte[] Trits, float Scale, float[] Norm, float Eps)
        : LayerParts(Rows, Columns, Bias, Relu);

    /// <summary>The same model with <paramref name="metadata"/> to save beside it (data, seed, accuracy).</summary>
    public CompactClassifier WithMetadata(IReadOnlyDictionary<string, string> metadata) => new(_layers, metadata);

    /// <summary>Logits of one example.</summary>
    public float[] Predict(ReadOnlySpan<float> x) => Through(x, _layers.Count);

    /// <summary>What the last layer sees: the example through every layer but the head.</summary>
    public float[] Features(ReadOnlySpan<float> x) => Through(x, _layers.Count - 1);

    /// <summary>The example through the first <paramref name="count"/> layers.</summary>
    private float[] Through(ReadOnlySpan<float> x, int count)
    {
        if (x.Length != Inputs) throw new ColdmindException($"The model takes {Inputs} features, got {x.Length}.");
        if (count == 0) return x.ToArray();
        float[] current = [];
        for (int i = 0; i < count; i++)
        {
            var layer = _layers[i];
            var next = new float[layer.Rows];
            layer.Forward(i == 0 ? x : current, next);
            if (layer.Bias != null) TensorPrimitives.Add(next, layer.Bias, next);
            if (layer.Relu) TensorPrimitives.Max(next, 0f, next);
            current = next;
        }
        return current;
    }

    /// <summary>The width of <see cref="Features"/>.</summary>
    public int FeatureWidth => _layers[^1].Columns;

    /// <summary>The head (the last layer, dense or sparse float) as a dense weight (classes, <see cref="FeatureWidth"/>) and its bias.</summary>
    public (float[] Weight, float[] Bias) Head()
    {
        var head = _layers[^1];
        if (head is TernaryLayer) throw new ColdmindException("The model's head is ternary; only a float head can be refitted.");
        int d = head.Columns, k = head.Rows;
        var w = new float[k * d];
        var unit = new float[d];
        var column = new float[k];
        for (int j = 0; j < d; j++)
        {
            unit[j] = 1;
            head.Forward(unit, column); // a linear layer maps the j-th unit vector to its j-th column
            for (int c = 0; c < k; c++) w[c * d + j] = column[c];
            unit[j] = 0;
        }
        return (w, head.Bias?.ToArray() ?? new float[k]);
    }

    /// <summary>The same model with a new dense float head: weight (classes, <see cref="FeatureWidth"/>) and bias (classes).</summary>
    public CompactClassifier WithHead(float[] weight, float[] bias)
    {
        if (weight.Length != Classes * FeatureWidth || bias.Length != Classes)
            throw new ColdmindException($"A head for {FeatureWidth} features and {Classes} classes takes {Classes * FeatureWidth} weights and {Classes} biases.");
        return new CompactClassifier([.. _layers.Take(_layers.Count - 1), new DenseLayer(weight, Classes, FeatureWidth, bias, relu: false)], Metadata);
    }

    /// <summary>Fraction of <paramref name="data"/> classified correctly, one example at a time.</summary>
    public float Accuracy(Data.Dataset data)
    {
        int correct = 0;
        for (int i = 0; i < data.Count; i++)
            if (TensorPrimitives.IndexOfMax(Predict(data.Features.AsSpan(i * data.FeatureCount, data.FeatureCount))) == data.Labels[i]) correct++;
        return (float)correct / Math.Max(1, data.Count);
    }

    public void Save(string path)
    {
        var tensors = new List<(string, Tensor)>();
        var dtypes = new Dictionary<string, string>();
        var meta = (Provenance.Read(Metadata, path) with { Format = Provenance.CompactFormat, Layers = _layers.Count }).ToMetadata();
        for (int i = 0; i < _layers.Count; i++)
        {
            string p = $"layers.{i}.";
            var l = _layers[i];
            meta[p + "kind"] = l.Kind;
            meta[p + "shape"] = $"{l.Rows}x{l.Columns}";
            meta[p + "relu"] = l.Relu ? "1" : "0";
            if (l.Bias != null) tensors.Add((p + "bias", Tensor.FromArray(l.Bias, l.Bias.Length)));
            foreach (var (name, values, dtype) in l.Tensors())
            {
                tensors.Add((p + name, Tensor.FromArray(values, values.Length)));
                dtypes[p + name] = dtype;
            }
            if (l is TernaryLayer t) meta[p + "eps"] = t.Eps.ToString("R", CultureInfo.InvariantCulture);
            if (l is QuantizedLayer q) meta[p + "scheme"] = q.Scheme.Name;
        }
        TensorFile.Write(path, tensors, meta, dtypes);
    }

    /// <summary>A compact classifier file; any other kind of model file is an error saying what it is.</summary>
    public static CompactClassifier Load(string path) => ModelFile.Open(path) switch
    {
        ClassifierFile { IsCompact: true } file => Load(file),
        var other => throw other.NotA("a compact classifier"),
    };

    /// <summary>The compact classifier in <paramref name="classifier"/>.</summary>
    public static CompactClassifier Load(ClassifierFile classifier)
    {
        var (file, path, meta) = (classifier.File, classifier.Path, classifier.File.Metadata);
        if (!classifier.IsCompact) throw classifier.NotA("a compact classifier");
        int count = classifier.Provenance.Layers ?? throw new ColdmindException($"'{path}' is a compact classifier with no layer count.");
        var layers = new List<Layer>();
        for (int i = 0; i < count; i++)
        {
            string p = $"layers.{i}.";
            float[] T(string name) => file.Arrays.TryGetValue(p + name, out var t) ? t.Values : throw new ColdmindException($"'{path}' lacks tensor '{p + name}'.");
            var shape = (meta.GetValueOrDefault(p + "shape") ?? "").Split('x');
            if (shape.Length != 2 || !int.TryParse(shape[0], CultureInfo.InvariantCulture, out int rows) || !int.TryParse(shape[1], CultureInfo.InvariantCulture, out int cols) || rows < 1 || cols < 1)
                throw new ColdmindException($"'{path}': {p}shape is missing or malformed.");
            bool relu = meta.GetValueOrDefault(p + "relu") == "1";
            float[]? bias = file.Arrays.ContainsKey(p + "bias") ? T("bias") : null;
            if (bias != null && bias.Length != rows) throw new ColdmindException($"'{path}': {p}bias has {bias.Length} values for {rows} rows.");
            int[] Ints(string name) => T(name).Select(v => (int)v).ToArray();
            layers.Add(meta.GetValueOrDefault(p + "kind") switch
            {
                "dense" => new DenseLayer(T("weight") is var w && w.Length == rows * cols ? w : throw new ColdmindException($"'{path}': {p}weight is not {rows}×{cols}."), rows, cols, bias, relu),
                "sparse" => new SparseLayer(SparseMatrix.FromCsr(rows, cols, Ints("crow_indices"), T("col_indices").Select(v => (ushort)v).ToArray(), T("values")), bias, relu),
                "ternary" => new TernaryLayer(new SparseTernaryMatrix(rows, cols, T("scale")[0], Ints("crow_indices"), Ints("negative_start"), T("col_indices").Select(v => (ushort)v).ToArray()),
                    T("norm"), Eps(meta.GetValueOrDefault(p + "eps"), $"'{path}': {p}eps"), relu),
                var k when k?.StartsWith(QuantizedLayer.KindPrefix, StringComparison.Ordinal) == true => QuantizedLayer.Load(T, file.Arrays.ContainsKey(p + "crow_indices"), rows, cols,
                    PtqScheme.Parse(meta.GetValueOrDefault(p + "scheme") ?? throw new ColdmindException($"'{path}': {p}scheme is missing.")), bias, relu, $"'{path}': {p}"),
                var k => throw new ColdmindException($"'{path}': layer {i} has unknown kind '{k}'."),
            });
            if (i > 0 && layers[i].Columns != layers[i - 1].Rows) throw new ColdmindException($"'{path}': layer {i} takes {layers[i].Columns} inputs, layer {i - 1} gives {layers[i - 1].Rows}.");
        }
        return new CompactClassifier(layers, meta);
    }

    /// <summary>A norm's epsilon: a small positive number (default 1e-6).</summary>
    private static float Eps(string? text, string where) =>
        text == null ? 1e-6f
        : float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float eps) && eps > 0 && eps < 1 ? eps
        : throw new ColdmindException($"{where} is '{text}', not a small positive number.");

    private abstract class Layer(int rows, int columns, float[]? bias, bool relu)
    {
        public int Rows => rows;
        public int Columns => columns;
        public float[]? Bias => bias;
        public bool Relu => relu;
        public abstract string Kind { get; }
        public abstract long NonZeros { get; }
        /// <summary>Bytes of the weights as stored for inference (bias and norm excluded).</summary>
        public abstract long Bytes { get; }
        public abstract void Forward(ReadOnlySpan<float> x, Span<float> y);
        public abstract IEnumerable<(string Name, float[] Values, string DType)> Tensors();
    }

    private sealed class DenseLayer(float[] w, int rows, int columns, float[]? bias, bool relu) : Layer(rows, columns, bias, relu)
    {
        public float[] Weight => w;
        public override string Kind => "dense";
        public override long NonZeros => w.Count(v => v != 0);
        public override long Bytes => 4L * w.Length;
        public override void Forward(ReadOnlySpan<float> x, Span<float> y)
        {
            for (int r = 0; r < Rows; r++) y[r] = TensorPrimitives.Dot(w.AsSpan(r * Columns, Columns), x);
        }
        public override IEnumerable<(string, float[], string)> Tensors() => [("weight", w, "F32")];
    }

    private sealed class SparseLayer(SparseMatrix m, float[]? bias, bool relu) : Layer(m.Rows, m.Columns, bias, relu)
    {
        public SparseMatrix Matrix => m;
        public override string Kind => "sparse";
        public override long NonZeros => m.NonZeros;
        public override long Bytes => m.ByteCount;
        public override void Forward(ReadOnlySpan<float> x, Span<float> y) => m.Multiply(x, y);
        public override IEnumerable<(string, float[], string)> Tensors() =>
            [("crow_indices", m.RowStart.Select(v => (float)v).ToArray(), "I32"), ("col_indices", m.ColumnIndex.Select(v => (float)v).ToArray(), "U16"), ("values", m.Values, "F32")];
    }

    private sealed class TernaryLayer(SparseTernaryMatrix m, float[] norm, float eps, bool relu) : Layer(m.Rows, m.Columns, null, relu)
    {
        public SparseTernaryMatrix Matrix => m;
        public float[] NormWeight => norm;
        public float Eps => eps;
        public override string Kind => "ternary";
        public override long NonZeros => m.NonZeros;
        public override long Bytes => m.ByteCount;

        /// <summary>BitLinear's forward: RMSNorm with its gain, absmax int8, then the trits' sums.</summary>
        public override void Forward(ReadOnlySpan<float> x, Span<float> y)
        {
            Span<float> h = x.Length <= 4096 ? stackalloc float[x.Length] : new float[x.Length];
            float rms = MathF.Sqrt(TensorPrimitives.Dot(x, x) / x.Length + eps);
            TensorPrimitives.Multiply(x, 1f / rms, h);
            TensorPrimitives.Multiply(h, norm, h);
            Span<sbyte> q = x.Length <= 4096 ? stackalloc sbyte[x.Length] : new sbyte[x.Length];
            float scale = BitNetQuantizer.QuantizeInt8(h, q);
            m.Multiply(q, scale, y);
        }

        /// <summary>The trits (rows, columns), row-major.</summary>
        public sbyte[] Trits()
        {
            var trits = new sbyte[(long)Rows * Columns];
            for (int r = 0; r < Rows; r++)
                for (int k = m.RowStart[r]; k < m.RowStart[r + 1]; k++) trits[r * Columns + m.Index[k]] = (sbyte)(k < m.NegativeStart[r] ? 1 : -1);
            return trits;
        }

        public override IEnumerable<(string, float[], string)> Tensors() =>
        [
            ("crow_indices", m.RowStart.Select(v => (float)v).ToArray(), "I32"), ("negative_start", m.NegativeStart.Select(v => (float)v).ToArray(), "I32"),
            ("col_indices", m.Index.Select(v => (float)v).ToArray(), "U16"), ("scale", [m.Scale], "F32"), ("norm", norm, "F32"),
        ];
    }

    /// <summary>
    /// A Linear layer rounded after training: packed codes and an f16 scale per group on disk (as GGUF's quantized
    /// types keep them), dense or CSR over the nonzero codes, whichever is smaller. In memory the codes are decoded
    /// once into the float dense or sparse layer that runs them, so it computes exactly scale · code with the
    /// existing kernels; the codes are derived back from those values when saving (scale · code is exact in float
    /// for an f16 scale and a code of at most 8 bits).
    /// </summary>
    private sealed class QuantizedLayer : Layer
    {
        public const string KindPrefix = "quantized:";
        private readonly Layer _decoded; // a DenseLayer or SparseLayer without bias or ReLU
        private readonly float[] _scales; // rows × groups, or one
        private readonly int _groups;

        public PtqScheme Scheme { get; }

        private QuantizedLayer(PtqScheme scheme, float[] scales, Layer decoded, float[]? bias, bool relu) : base(decoded.Rows, decoded.Columns, bias, relu) =>
            (Scheme, _scales, _decoded, _groups) = (scheme, scales, decoded, scheme.GroupsPerRow(decoded.Columns));

        public static QuantizedLayer Compile(float[] w, int rows, int columns, PtqScheme scheme, float[]? bias, bool relu)
        {
            var (codes, scales) = scheme.Quantize(w, columns);
            var halves = scales.Select(d => (float)(Half)d).ToArray();
            int groups = scheme.GroupsPerRow(columns);
            var values = codes.Select((q, i) => halves[scheme.ScaleIndex(i / columns, i % columns, groups)] * q).ToArray();
            long nonZeros = values.LongCount(v => v != 0);
            bool sparse = CodePacking.ByteCount(nonZeros, scheme.Method) + 2 * nonZeros + 4L * (rows + 1) < CodePacking.ByteCount(values.LongLength, scheme.Method)
                && columns <= ushort.MaxValue + 1;
            Layer decoded = sparse ? new SparseLayer(SparseMatrix.FromDense(values, rows, columns), null, false) : new DenseLayer(values, rows, columns, null, false);
            return new QuantizedLayer(scheme, halves, decoded, bias, relu);
        }

        public static QuantizedLayer Load(Func<string, float[]> tensor, bool sparse, int rows, int columns, PtqScheme scheme, float[]? bias, bool relu, string where)
        {
            var scales = tensor("scales");
            int groups = scheme.GroupsPerRow(columns);
            if (scales.Length != (scheme.GroupSize > 0 ? rows * groups : 1)) throw new ColdmindException($"{where}{scales.Length} scales for a {rows}×{columns} {scheme.Name} layer.");
            if (!scales.All(float.IsFinite)) throw new ColdmindException($"{where}scales: a scale is not a finite number.");
            SparseMatrix? m = null;
            if (sparse)
            {
                var columnIndex = tensor("col_indices").Select(v => (ushort)v).ToArray();
                try { m = SparseMatrix.FromCsr(rows, columns, tensor("crow_indices").Select(v => (int)v).ToArray(), columnIndex, new float[columnIndex.Length]); }
                catch (ColdmindException e) { throw new ColdmindException($"{where}{e.Message}"); }
            }
            var codes = new sbyte[m?.NonZeros ?? (long)rows * columns];
            try { CodePacking.Unpack(tensor("codes").Select(v => (byte)v).ToArray(), scheme.Method, codes); }
            catch (ColdmindException e) { throw new ColdmindException($"{where}codes: {e.Message}"); }
            if (m == null)
                return new QuantizedLayer(scheme, scales, new DenseLayer(codes.Select((q, i) => scales[scheme.ScaleIndex(i / columns, i % columns, groups)] * q).ToArray(), rows, columns, null, false), bias, relu);
            for (int r = 0; r < rows; r++)
                for (int k = m.RowStart[r]; k < m.RowStart[r + 1]; k++) m.Values[k] = scales[scheme.ScaleIndex(r, m.ColumnIndex[k], groups)] * codes[k];
            return new QuantizedLayer(scheme, scales, new SparseLayer(m, null, false), bias, relu);
        }

        public override string Kind => KindPrefix + Scheme.Method.ToString().ToLowerInvariant() + (_decoded is SparseLayer ? ":sparse" : "");
        public override long NonZeros => _decoded.NonZeros;
        public override long Bytes => 2L * _scales.Length + (_decoded is SparseLayer s
            ? CodePacking.ByteCount(s.Matrix.NonZeros, Scheme.Method) + 2L * s.Matrix.NonZeros + 4L * (Rows + 1)
            : CodePacking.ByteCount((long)Rows * Columns, Scheme.Method));

        public override void Forward(ReadOnlySpan<float> x, Span<float> y) => _decoded.Forward(x, y);

        public float[] Scales => _scales;

        /// <summary>The codes (rows, columns), row-major, zero where a sparse layer keeps none.</summary>
        public sbyte[] Codes()
        {
            var codes = new sbyte[(long)Rows * Columns];
            var w = _decoded is SparseLayer { Matrix: var m } ? Dense(m) : ((DenseLayer)_decoded).Weight;
            for (int i = 0; i < codes.Length; i++) codes[i] = Code(i / Columns, i % Columns, w[i]);
            return codes;
        }

        private sbyte Code(int row, int column, float value)
        {
            float d = _scales[Scheme.ScaleIndex(row, column, _groups)];
            return d == 0 ? (sbyte)0 : (sbyte)MathF.Round(value / d);
        }

        public override IEnumerable<(string, float[], string)> Tensors()
        {
            if (_decoded is SparseLayer { Matrix: var m })
            {
                var kept = new sbyte[m.NonZeros];
                for (int r = 0; r < Rows; r++)
                    for (int k = m.RowStart[r]; k < m.RowStart[r + 1]; k++) kept[k] = Code(r, m.ColumnIndex[k], m.Values[k]);
                return
                [
                    ("crow_indices", m.RowStart.Select(v => (float)v).ToArray(), "I32"), ("col_indices", m.ColumnIndex.Select(v => (float)v).ToArray(), "U16"),
                    ("codes", Packed(kept), "U8"), ("scales", _scales, "F16"),
                ];
            }
            var w = ((DenseLayer)_decoded).Weight;
            return [("codes", Packed(w.Select((v, i) => Code(i / Columns, i % Columns, v)).ToArray()), "U8"), ("scales", _scales, "F16")];
        }

        private float[] Packed(sbyte[] codes) => CodePacking.Pack(codes, Scheme.Method).Select(b => (float)b).ToArray();
    }
}
