using System.Globalization;
using Coldmind.Tensors;

namespace Coldmind.Nn;

/// <summary> A feed-forward classifier given as a list of layers, each taking the previous one's output: what a network
/// imported from ONNX becomes (<see cref="ClassifierSpec.Stack"/>). Text form, layers separated by ';': <c>affine</c>
/// (y = x·scale + shift, both of the sample's shape), <c>conv O K S P</c> (O channels, K×K kernel, stride S, zero
/// padding P), <c>maxpool K S</c>, <c>avgpool K</c> (stride K), <c>globalavgpool</c>, <c>flatten</c>, <c>linear O</c>,
/// <c>bitlinear O</c> (BitNet b1.58: RMSNorm, int8 activations, ternary weights), and the activations <c>relu</c>,
/// <c>sigmoid</c>, <c>tanh</c>, <c>gelu</c>. Parameters are named <c>layers.I.weight</c>, <c>.bias</c>, <c>.scale</c>,
/// <c>.shift</c>, <c>.norm.weight</c> for layer I. </summary>
public sealed class LayerStack : Module
{
    private readonly Sequential _layers;

    /// <summary>Shape of one example after each layer (the first entry: the input's).</summary>
    public IReadOnlyList<int[]> Shapes { get; }

    /// <summary>Multiply-adds of one example (convolutions, linear layers, affine scalings).</summary>
    public long Macs { get; }

    public LayerStack(int[] inputShape, string layers, Rng rng)
    {
        var modules = new List<Module>();
        var shapes = new List<int[]> { inputShape };
        long macs = 0;
        foreach (var text in layers.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var shape = shapes[^1];
            var parts = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            int Int(int i, int min) =>
                parts.Length > i
                && int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out int v)
                && v >= min
                && v < 1 << 20
                    ? v
                    : throw new ColdmindException(
                        $"Layer '{text}': argument {i} is missing or not a whole number from {min}."
                    );
            int Arg(int i) => Int(i, 1);
            int Image(int axis) =>
                shape.Length == 3
                    ? shape[axis]
                    : throw new ColdmindException(
                        $"Layer '{text}' needs images (channels, height, width), it gets shape {Tensors.Shape.Format(shape)}."
                    );
            (Module module, int[] output) = parts[0] switch
            {
                "affine" => (new Affine(shape), shape),
                "conv" => Conv(Image(0), Arg(1), Arg(2), Arg(3), Int(4, 0), Image(1), Image(2)),
                "maxpool" => (
                    new MaxPool2d(Arg(1), Arg(2)),
                    [Image(0), (Image(1) - Arg(1)) / Arg(2) + 1, (Image(2) - Arg(1)) / Arg(2) + 1]
                ),
                "avgpool" => (new AvgPool2d(Arg(1)), [Image(0), Image(1) / Arg(1), Image(2) / Arg(1)]),
                "globalavgpool" => (new GlobalAvgPool(), [Image(0), 1, 1]),
                "flatten" => (new Flatten(), [Tensors.Shape.Numel(shape)]),
                "linear" or "bitlinear" when shape.Length != 1 => throw new ColdmindException(
                    $"Layer '{text}' needs a flat input, it gets shape {Tensors.Shape.Format(shape)}; flatten first."
                ),
                "linear" => (new Linear(shape[0], Arg(1), rng), [Arg(1)]),
                "bitlinear" => (new BitLinear(shape[0], Arg(1), rng), [Arg(1)]),
                var a when Enum.TryParse<Activation>(a, ignoreCase: true, out var kind) && Enum.IsDefined(kind) => (
                    new ActivationLayer(kind),
                    shape
                ),
                var k => throw new ColdmindException($"Unknown layer '{k}' in a layer stack."),
            };
            if (output.Any(d => d < 1))
                throw new ColdmindException(
                    $"Layer '{text}' leaves no output from input shape {Tensors.Shape.Format(shape)}."
                );
            macs += module switch
            {
                Conv2d c => (long)c.Weight.Numel * output[1] * output[2],
                Linear l => l.Weight.Numel,
                BitLinear b => b.Weight.Numel,
                Affine => Tensors.Shape.Numel(shape),
                _ => 0,
            };
            modules.Add(module);
            shapes.Add(output);
        }
        if (shapes[^1].Length != 1)
            throw new ColdmindException(
                $"A layer stack must end flat (classes), it ends with shape {Tensors.Shape.Format(shapes[^1])}."
            );
        (Shapes, Macs) = (shapes, macs);
        _layers = Child("layers", new Sequential([.. modules]));

        (Module, int[]) Conv(int inChannels, int outChannels, int kernel, int stride, int padding, int h, int w) =>
            (
                new Conv2d(inChannels, outChannels, kernel, rng, stride, padding),
                [outChannels, (h + 2 * padding - kernel) / stride + 1, (w + 2 * padding - kernel) / stride + 1]
            );
    }

    public IReadOnlyList<Module> Layers => _layers.Layers;

    public override Tensor Forward(Tensor x) => _layers.Forward(x);
}

/// <summary>Elementwise y = x · scale + shift, scale and shift of one example's shape (a feature scaling, an unfolded
/// BatchNorm).</summary>
public sealed class Affine : Module
{
    public Tensor Scale { get; }
    public Tensor Shift { get; }

    public Affine(int[] shape)
    {
        Scale = Parameter("scale", Tensor.Full(1f, shape));
        Shift = Parameter("shift", Tensor.Zeros(shape));
    }

    public override Tensor Forward(Tensor x) =>
        x.Mul(Scale.Reshape([1, .. Scale.Shape])).Add(Shift.Reshape([1, .. Shift.Shape]));
}

/// <summary>Average pooling over K×K windows at stride K (no padding; rows and columns past the last whole window are
/// dropped).</summary>
public sealed class AvgPool2d(int kernel) : Module
{
    public int Kernel => kernel;

    public override Tensor Forward(Tensor x)
    {
        int n = x.Shape[0],
            c = x.Shape[1],
            oh = x.Shape[2] / kernel,
            ow = x.Shape[3] / kernel;
        if (x.Shape[2] != oh * kernel)
            x = x.Slice(2, 0, oh * kernel);
        if (x.Shape[3] != ow * kernel)
            x = x.Slice(3, 0, ow * kernel);
        // (n, c, oh·k, ow·k) → (n, c, oh, k, ow, k), mean over both k axes
        return x.Contiguous().Reshape(n, c, oh, kernel, ow, kernel).Mean(5).Mean(3);
    }
}

/// <summary>(n, c, h, w) → (n, c, 1, 1): the mean of each channel.</summary>
public sealed class GlobalAvgPool : Module
{
    public override Tensor Forward(Tensor x) =>
        x.Contiguous().Reshape(x.Shape[0], x.Shape[1], -1).Mean(2).Reshape(x.Shape[0], x.Shape[1], 1, 1);
}
