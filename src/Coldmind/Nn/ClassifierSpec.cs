using System.Globalization;
using Coldmind.Tensors;

namespace Coldmind.Nn;

/// <summary>
/// What a classifier is, enough to rebuild it: stored in a checkpoint's metadata so that a safetensors
/// file alone can be loaded back (by <see cref="FromMetadata"/>) and run.
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
        _ => throw new ColdmindException($"Unknown model kind '{Kind}'; known: mlp, cnn."),
    };

    public string Describe() => Kind == Stack ? $"network {Layers.Replace(";", " →", StringComparison.Ordinal)}" : Kind == Mlp
        ? $"{(Ternary ? "ternary (BitNet b1.58) " : "")}MLP {string.Join("-", [Tensors.Shape.Numel(InputShape), .. Hidden, Classes])}"
        : $"CNN conv {string.Join(",", Channels)} → {Hidden[0]} → {Classes}";

    public Dictionary<string, string> ToMetadata()
    {
        var meta = new Dictionary<string, string>
        {
            ["coldmind.model"] = Kind,
            ["coldmind.input_shape"] = Join(InputShape),
            ["coldmind.classes"] = Classes.ToString(CultureInfo.InvariantCulture),
            ["coldmind.hidden"] = Join(Hidden),
            ["coldmind.channels"] = Join(Channels),
            ["coldmind.ternary"] = Ternary ? "true" : "false",
        };
        if (Kind == Stack) meta["coldmind.stack"] = Layers;
        return meta;
    }

    public static ClassifierSpec FromMetadata(IReadOnlyDictionary<string, string> meta, string path)
    {
        string Get(string key) => meta.TryGetValue(key, out var v) ? v
            : throw new ColdmindException($"'{path}' was not written by `coldmind train`: its metadata has no '{key}'.");
        try
        {
            return new ClassifierSpec(Get("coldmind.model"), Split(Get("coldmind.input_shape")), int.Parse(Get("coldmind.classes"), CultureInfo.InvariantCulture),
                Split(Get("coldmind.hidden")), Split(Get("coldmind.channels")), meta.GetValueOrDefault("coldmind.ternary") == "true",
                meta.GetValueOrDefault("coldmind.stack") ?? "");
        }
        catch (FormatException e)
        {
            throw new ColdmindException($"'{path}' has malformed Coldmind metadata: {e.Message}", e);
        }
    }

    private static string Join(int[] xs) => string.Join(",", xs);

    private static int[] Split(string s) => s.Length == 0 ? [] : s.Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray();
}
