using Coldmind.Tensors;

namespace Coldmind.Nn;

/// <summary>
/// A multi-layer perceptron: Linear → activation (→ dropout) for each hidden size, then a Linear head.
/// With <c>ternary</c> the hidden layers are <see cref="BitLinear"/> (BitNet b1.58) and the
/// head stays float, as BitNet keeps embeddings and output heads in high precision.
/// </summary>
public sealed class Mlp : Module
{
    private readonly Sequential _net;

    public Mlp(int inputs, IReadOnlyList<int> hidden, int outputs, Rng rng, Activation activation = Activation.Relu, float dropout = 0f, bool ternary = false)
    {
        var layers = new List<Module> { new Flatten() };
        int width = inputs;
        foreach (int h in hidden)
        {
            layers.Add(ternary ? new BitLinear(width, h, rng) : new Linear(width, h, rng));
            layers.Add(new ActivationLayer(activation));
            if (dropout > 0) layers.Add(new Dropout(dropout, rng.Fork()));
            width = h;
        }
        layers.Add(new Linear(width, outputs, rng));
        _net = Child("net", new Sequential([.. layers]));
    }

    public override Tensor Forward(Tensor x) => _net.Forward(x);
}

/// <summary>
/// A small LeNet-style CNN for (channels, h, w) images: [conv3×3(pad 1) → ReLU → maxpool 2] per
/// entry of <c>channels</c>, then a hidden Linear layer and the classifier.
/// </summary>
public sealed class SmallCnn : Module
{
    private readonly Sequential _net;

    public SmallCnn(int inChannels, int height, int width, IReadOnlyList<int> channels, int hidden, int classes, Rng rng, float dropout = 0f)
    {
        var layers = new List<Module>();
        int c = inChannels, h = height, w = width;
        foreach (int o in channels)
        {
            layers.Add(new Conv2d(c, o, 3, rng, padding: 1));
            layers.Add(new ActivationLayer(Activation.Relu));
            if (h >= 2 && w >= 2) { layers.Add(new MaxPool2d(2)); h /= 2; w /= 2; }
            c = o;
        }
        layers.Add(new Flatten());
        if (dropout > 0) layers.Add(new Dropout(dropout, rng.Fork()));
        layers.Add(new Linear(c * h * w, hidden, rng));
        layers.Add(new ActivationLayer(Activation.Relu));
        layers.Add(new Linear(hidden, classes, rng));
        _net = Child("net", new Sequential([.. layers]));
    }

    public override Tensor Forward(Tensor x) => _net.Forward(x);
}
