using Coldmind.Tensors;

namespace Coldmind.Nn;

/// <summary>
/// What a classifier is, enough to rebuild it: stored in a checkpoint's metadata (by <c>Models.Provenance</c>) so
/// that a safetensors file alone can be loaded back and run.
/// (Kind <see cref="Stack"/>: any feed-forward network, e.g. imported from ONNX, its layers in <see cref="Layers"/>.)
/// </summary>
public sealed record ClassifierSpec(string Kind, int[] InputShape, int Classes, int[] Hidden, int[] Channels, bool Ternary = false, string Layers = "")
{
    public const string Mlp = "mlp", Cnn = "cnn", Stack = "stack";

    public static ClassifierSpec ForStack(int[] inputShape, int classes, string layers) => new(Stack, inputShape, classes, [], [], Layers: layers);

    public static ClassifierSpec ForMlp(int[] inputShape, int classes, int[] hidden, bool ternary = false) => new(Mlp, inputShape, classes, hidden, [], ternary);

    public static ClassifierSpec ForCnn(int[] inputShape, int classes, int[] channels, int hidden) =>
        inputShape.Length == 3 ? new(Cnn, inputShape, classes, [hidden], channels)
            : throw new ColdmindException($"A CNN needs image input (channels, height, width); this data has examples of shape {Tensors.Shape.Format(inputShape)}. Use --model mlp.");

    public Module Build(Rng rng) => Kind switch
    {
        Mlp => new Nn.Mlp(Tensors.Shape.Numel(InputShape), Hidden, Classes, rng, ternary: Ternary),
        Cnn => new SmallCnn(InputShape[0], InputShape[1], InputShape[2], Channels, Hidden[0], Classes, rng),
        Stack => new LayerStack(InputShape, Layers, rng),
        _ => throw new ColdmindException($"Unknown model kind '{Kind}'; known: mlp, cnn, stack."),
    };

    public string Describe() => Kind == Stack ? $"network {Layers.Replace(";", " →", StringComparison.Ordinal)}" : Kind == Mlp
        ? $"{(Ternary ? "ternary (BitNet b1.58) " : "")}MLP {string.Join("-", [Tensors.Shape.Numel(InputShape), .. Hidden, Classes])}"
        : $"CNN conv {string.Join(",", Channels)} → {Hidden[0]} → {Classes}";
}
