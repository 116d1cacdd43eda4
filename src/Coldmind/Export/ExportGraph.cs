using System.Globalization;
using Coldmind.Models;
using Coldmind.Runtime.Classifier;
using Coldmind.Formats;
using Coldmind.Nn;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Export;

/// <summary>
/// One layer of a classifier as the exporter sees it: <see cref="Rows"/> outputs from <see cref="Columns"/> inputs,
/// then ReLU when <see cref="Relu"/>. Weights are held dense (row-major, zeros kept) whatever the storage the C
/// code picks, so every storage decision is made in one place (<see cref="CExporter"/>).
/// </summary>
public abstract record ExportLayer(int Rows, int Columns, bool Relu)
{
    /// <summary>What the layer is called in messages and the generated code's comments.</summary>
    public abstract string Kind { get; }
}

/// <summary>
/// A float32 linear layer (a `train` MLP, a ticket, a float head): weight (rows, columns), bias (rows) or null.
/// </summary>
public sealed record FloatLayer(int Rows, int Columns, bool Relu, float[] Weight, float[]? Bias)
    : ExportLayer(Rows, Columns, Relu)
{
    public override string Kind => "float";
}

/// <summary>
/// A linear layer rounded after training: weight[r, c] = scale · code[r, c], the scale per group of
/// <see cref="GroupSize"/> columns of a row (0: one scale for the tensor). The codes' range is the method's.
/// </summary>
public sealed record CodeLayer(
    int Rows, int Columns, bool Relu, PtqMethod Method, int GroupSize, sbyte[] Codes, float[] Scales, float[]? Bias)
    : ExportLayer(Rows, Columns, Relu)
{
    public override string Kind => Method.ToString().ToLowerInvariant();
    public int Groups => GroupSize > 0 ? (Columns + GroupSize - 1) / GroupSize : 1;
    public int ScaleIndex(int row, int group) => GroupSize > 0 ? row * Groups + group : 0;
    public int GroupWidth => GroupSize > 0 ? GroupSize : Columns;
}

/// <summary>
/// A BitNet b1.58 layer as Coldmind runs it: RMSNorm with its gain, absmax int8 activations, trits (−1, 0, +1)
/// with one scale; no bias.
/// </summary>
public sealed record TernaryLayer(int Rows, int Columns, bool Relu, sbyte[] Trits, float Scale, float[] Norm, float Eps)
    : ExportLayer(Rows, Columns, Relu)
{
    public override string Kind => "ternary";
}

/// <summary>
/// A 3×3 convolution with padding 1 and stride 1 on a (channels, height, width) input, its bias, ReLU, then a 2×2
/// max pool when <see cref="Pool"/> (as <see cref="SmallCnn"/> builds it). Weight (out, in, 3, 3).
/// </summary>
public sealed record ConvLayer(
    int InChannels, int Height, int Width, int OutChannels, bool Relu, bool Pool, float[] Weight, float[]? Bias)
    : ExportLayer(OutChannels * (Pool ? Height / 2 : Height) * (Pool ? Width / 2 : Width), InChannels * Height * Width,
        Relu)
{
    public override string Kind => "conv3x3";
}

/// <summary>
/// A classifier as a chain of layers, read from a file Coldmind writes: a compact classifier or a `train` checkpoint.
/// </summary>
public sealed record ExportGraph(
    string Name, IReadOnlyList<ExportLayer> Layers, int[] InputShape, IReadOnlyDictionary<string, string> Metadata)
{
    public int Inputs => Layers[0].Columns;
    public int Classes => Layers[^1].Rows;

    public static ExportGraph Load(string path)
    {
        string name = Path.GetFileNameWithoutExtension(path);
        var opened = ModelFile.Open(path);
        if (opened is not ClassifierFile classifier) throw opened.NotA("a classifier to export");
        if (classifier.IsCompact) return FromCompact(classifier, name);
        var spec = classifier.Provenance.Spec!;
        var module = spec.Build(new Rng(0));
        module.LoadState(classifier.File.ToTensors());
        return FromModule(module, spec.InputShape, name, classifier.File.Metadata);
    }

    /// <summary>
    /// The layers of a file <see cref="CompactClassifier.Save"/> wrote (the format its summary states):
    /// dense, sparse (CSR), ternary (+1 and −1 column lists per row) and quantized codes.
    /// </summary>
    private static ExportGraph FromCompact(ClassifierFile classifier, string name)
    {
        // The runtime's own loader validates the file completely; what it accepts, this reads.
        var validated = CompactClassifier.Load(classifier);
        var (file, meta) = (classifier.File, classifier.File.Metadata);
        int count = classifier.Provenance.Layers!.Value;
        var layers = new List<ExportLayer>();
        for (int i = 0; i < count; i++)
        {
            string p = $"layers.{i}.";
            float[] T(string n) => file.Arrays[p + n].Values;
            int[] I(string n) => T(n).Select(v => (int)v).ToArray();
            var shape = meta[p + "shape"].Split('x');
            int rows = int.Parse(shape[0], CultureInfo.InvariantCulture);
            int cols = int.Parse(shape[1], CultureInfo.InvariantCulture);
            bool relu = meta.GetValueOrDefault(p + "relu") == "1";
            float[]? bias = file.Arrays.ContainsKey(p + "bias") ? T("bias") : null;
            string kind = meta[p + "kind"];
            if (kind == "dense") layers.Add(new FloatLayer(rows, cols, relu, T("weight"), bias));
            else if (kind == "sparse")
            {
                var w = new float[rows * cols];
                int[] start = I("crow_indices"), col = I("col_indices");
                float[] v = T("values");
                for (int r = 0; r < rows; r++)
                    for (int k = start[r]; k < start[r + 1]; k++) w[r * cols + col[k]] = v[k];
                layers.Add(new FloatLayer(rows, cols, relu, w, bias));
            }
            else if (kind == "ternary")
            {
                var trits = new sbyte[rows * cols];
                int[] start = I("crow_indices"), negative = I("negative_start"), col = I("col_indices");
                for (int r = 0; r < rows; r++)
                    for (int k = start[r]; k < start[r + 1]; k++)
                        trits[r * cols + col[k]] = (sbyte)(k < negative[r] ? 1 : -1);
                float eps = float.Parse(meta.GetValueOrDefault(p + "eps") ?? "1e-6", CultureInfo.InvariantCulture);
                layers.Add(new TernaryLayer(rows, cols, relu, trits, T("scale")[0], T("norm"), eps));
            }
            else
            {
                var scheme = PtqScheme.Parse(meta[p + "scheme"]);
                bool sparse = file.Arrays.ContainsKey(p + "crow_indices");
                var codes = new sbyte[rows * cols];
                if (sparse)
                {
                    int[] start = I("crow_indices"), col = I("col_indices");
                    var kept = new sbyte[start[rows]];
                    CodePacking.Unpack(T("codes").Select(v => (byte)v).ToArray(), scheme.Method, kept);
                    for (int r = 0; r < rows; r++)
                        for (int k = start[r]; k < start[r + 1]; k++) codes[r * cols + col[k]] = kept[k];
                }
                else CodePacking.Unpack(T("codes").Select(v => (byte)v).ToArray(), scheme.Method, codes);
                layers.Add(new CodeLayer(rows, cols, relu, scheme.Method, scheme.GroupSize, codes, T("scales"), bias));
            }
        }
        return new ExportGraph(name, layers, [validated.Inputs], meta);
    }

    /// <summary>
    /// The layers of a trained network, in order: Linear, BitLinear (ternarized as its forward pass does), and the
    /// 3×3 convolutions and 2×2 pools of a <see cref="SmallCnn"/>; ReLU, Flatten and Dropout (off at inference)
    /// between them. Anything else is refused by name.
    /// </summary>
    public static ExportGraph FromModule(Module model, int[] inputShape, string name,
        IReadOnlyDictionary<string, string> metadata)
    {
        var norms = model.Modules().OfType<BitLinear>().Select(b => b.Norm).ToHashSet(); // run inside their BitLinear
        var modules = model.Modules()
            .Where(m => m is not (Sequential or Flatten or Dropout) && m != model && !norms.Contains(m as RmsNorm))
            .ToList();
        var layers = new List<ExportLayer>();
        var (c, h, w) = inputShape is [var c0, var h0, var w0] ? (c0, h0, w0) : (0, 0, 0);
        for (int i = 0; i < modules.Count; i++)
        {
            bool relu = i + 1 < modules.Count && modules[i + 1] is ActivationLayer { Kind: Activation.Relu };
            switch (modules[i])
            {
                case Linear l:
                    layers.Add(new FloatLayer(l.Weight.Shape[0], l.Weight.Shape[1], relu, l.Weight.ToArray(),
                        l.Bias?.ToArray()));
                    break;
                case BitLinear b:
                    var trits = new sbyte[b.Weight.Numel];
                    float scale = Quantization.BitNetQuantizer.Ternarize(b.Weight.ToArray(), trits);
                    var norm = b.Norm ?? throw new ColdmindException($"Layer {i} of '{name}' is a BitLinear "
                        + "without its own norm; the C export runs BitNet layers with their RMSNorm only.");
                    layers.Add(new TernaryLayer(b.Weight.Shape[0], b.Weight.Shape[1], relu, trits, scale,
                        norm.Weight.ToArray(), norm.Eps));
                    break;
                case Conv2d conv when conv.Weight.Shape is [_, _, 3, 3] && conv.Stride == 1 && conv.Padding == 1
                    && conv.Weight.Shape[1] == c:
                    int next = i + 1 + modules.Skip(i + 1).TakeWhile(m => m is ActivationLayer).Count();
                    bool pool = next < modules.Count && modules[next] is MaxPool2d;
                    layers.Add(new ConvLayer(c, h, w, conv.Weight.Shape[0], relu, pool, conv.Weight.ToArray(),
                        conv.Bias?.ToArray()));
                    (c, h, w) = (conv.Weight.Shape[0], pool ? h / 2 : h, pool ? w / 2 : w);
                    break;
                case Conv2d:
                    throw new ColdmindException($"Layer {i} of '{name}' is a convolution other than 3×3, stride 1, "
                        + "padding 1; the C export writes only those (SmallCnn's). Retrain with "
                        + "`coldmind train --model cnn` or export an MLP.");
                case MaxPool2d when i > 0 && modules[i - 1] is ActivationLayer
                    && layers.LastOrDefault() is ConvLayer { Pool: true }:
                case ActivationLayer { Kind: Activation.Relu } when layers.Count > 0:
                    break;
                default:
                    throw new ColdmindException($"Layer {i} of '{name}' is a {modules[i].GetType().Name}, which the "
                        + "C export cannot write; it writes Linear, BitLinear and SmallCnn's 3×3 convolutions "
                        + "with ReLU and 2×2 max pools (MLPs and CNNs from `coldmind train`, models from `shrink`).");
            }
        }
        if (layers.Count == 0) throw new ColdmindException($"'{name}' has no layers the C export can write.");
        for (int i = 1; i < layers.Count; i++)
            if (layers[i].Columns != layers[i - 1].Rows)
                throw new ColdmindException(
                    $"Layer {i} of '{name}' takes {layers[i].Columns} inputs; the layer before gives "
                    + $"{layers[i - 1].Rows}.");
        return new ExportGraph(name, layers, inputShape, metadata);
    }
}
