using System.Globalization;
using Coldmind.Nn;

namespace Coldmind.Models;

/// <summary>
/// What a Coldmind model file says about itself: what network it is, how it was made (data, split seed, label
/// column, classes), and what was measured (temperature, test accuracy). It is the only code that reads or writes
/// the <c>coldmind.*</c> metadata keys; every value is parsed checked, and a bad one is an error naming the key
/// and the file. Keys of other tools are carried through untouched in <see cref="Other"/>.
/// </summary>
public sealed record Provenance
{
    private const string Prefix = "coldmind.";
    /// <summary>The value of <c>coldmind.format</c> on a compact classifier (what shrink, ptq and search write).</summary>
    public const string CompactFormat = "compact-classifier";
    /// <summary>GGUF key: the feed-forward activation of a train-lm model.</summary>
    public const string FfnActivationKey = Prefix + "ffn_activation";
    /// <summary>GGUF key: the merge recipe a merged language model was made by.</summary>
    public const string MergeKey = Prefix + "merge";

    /// <summary><c>coldmind.format</c>: <see cref="CompactFormat"/>, or null for a training checkpoint.</summary>
    public string? Format { get; init; }
    /// <summary>The network a training checkpoint holds (<c>coldmind.model</c>, <c>input_shape</c>, <c>classes</c>, …).</summary>
    public ClassifierSpec? Spec { get; init; }
    /// <summary><c>coldmind.layers</c>: a compact classifier's layer count.</summary>
    public int? Layers { get; init; }
    /// <summary><c>coldmind.data</c>: the data it was trained on (digits, fashion-mnist or a path).</summary>
    public string? Data { get; init; }
    /// <summary><c>coldmind.seed</c>: the seed of its train/validation/test split.</summary>
    public ulong? Seed { get; init; }
    /// <summary><c>coldmind.label</c>: a CSV's label column.</summary>
    public string? Label { get; init; }
    /// <summary><c>coldmind.train_classes</c>: the classes it was trained on, when not all (e.g. 0-4).</summary>
    public string? TrainClasses { get; init; }
    /// <summary><c>coldmind.temperature</c>: its calibration temperature.</summary>
    public float? Temperature { get; init; }
    /// <summary><c>coldmind.test_accuracy</c>, as measured when it was written.</summary>
    public double? TestAccuracy { get; init; }
    /// <summary><c>coldmind.ptq</c>: the post-training quantization scheme it was rounded by.</summary>
    public string? Ptq { get; init; }
    /// <summary><c>coldmind.merge</c>: the recipe a merged model was made by.</summary>
    public string? Merge { get; init; }
    /// <summary><c>coldmind.onnx</c>: the ONNX file (and its opset and producer) an imported model came from.</summary>
    public string? Onnx { get; init; }
    /// <summary>Every key that is not one of the above (other tools', and <c>coldmind.{section}.*</c> ones).</summary>
    public IReadOnlyDictionary<string, string> Other { get; init; } = new Dictionary<string, string>();

    public bool IsCompactClassifier => Format == CompactFormat;

    /// <summary>Reads the <c>coldmind.*</c> keys of <paramref name="metadata"/>; <paramref name="origin"/> names the file in errors.</summary>
    public static Provenance Read(IReadOnlyDictionary<string, string> metadata, string origin)
    {
        var keys = new Reader(metadata, origin);
        var p = new Provenance
        {
            Format = keys.Text("format"),
            Layers = keys.Int("layers", 1, 1000),
            Data = keys.Text("data"),
            Seed = keys.Parse<ulong>("seed", s => ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : (ulong?)null, "a whole number ≥ 0"),
            Label = keys.Text("label"),
            TrainClasses = keys.Text("train_classes"),
            Temperature = keys.Parse<float>("temperature", s => float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
                && float.IsFinite(v) && v > 0 ? v : (float?)null, "a positive number"),
            TestAccuracy = keys.Parse<double>("test_accuracy", s => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
                && v is >= 0 and <= 1 ? v : (double?)null, "a fraction in [0, 1]"),
            Ptq = keys.Text("ptq"),
            Merge = keys.Text("merge"),
            Onnx = keys.Text("onnx"),
            Spec = keys.Text("model") is { } kind ? ReadSpec(kind, keys) : null,
        };
        return p with { Other = metadata.Where(kv => !keys.Read.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value) };
    }

    /// <summary>The metadata to store: every known field that is set, then <see cref="Other"/>.</summary>
    public Dictionary<string, string> ToMetadata()
    {
        var m = new Dictionary<string, string>(Other);
        void Set(string key, string? value)
        {
            if (value != null) m[Prefix + key] = value;
        }
        Set("format", Format);
        Set("layers", Layers?.ToString(CultureInfo.InvariantCulture));
        if (Spec is { } s)
        {
            Set("model", s.Kind);
            Set("input_shape", Join(s.InputShape));
            Set("classes", s.Classes.ToString(CultureInfo.InvariantCulture));
            Set("hidden", Join(s.Hidden));
            Set("channels", Join(s.Channels));
            Set("ternary", s.Ternary ? "true" : "false");
            if (s.Kind == ClassifierSpec.Stack) Set("stack", s.Layers);
        }
        Set("data", Data);
        Set("seed", Seed?.ToString(CultureInfo.InvariantCulture));
        Set("label", Label);
        Set("train_classes", TrainClasses);
        Set("temperature", Temperature?.ToString("R", CultureInfo.InvariantCulture));
        Set("test_accuracy", TestAccuracy?.ToString("R", CultureInfo.InvariantCulture));
        Set("ptq", Ptq);
        Set("merge", Merge);
        Set("onnx", Onnx);
        return m;
    }

    /// <summary>The <c>coldmind.{section}.*</c> keys of a swarm checkpoint, by name within the section.</summary>
    public IReadOnlyDictionary<string, string> Section(string section)
    {
        string start = $"{Prefix}{section}.";
        return Other.Where(kv => kv.Key.StartsWith(start, StringComparison.Ordinal)).ToDictionary(kv => kv.Key[start.Length..], kv => kv.Value);
    }

    /// <summary>This provenance with <paramref name="values"/> stored as the <c>coldmind.{section}.*</c> keys.</summary>
    public Provenance WithSection(string section, IReadOnlyDictionary<string, string> values)
    {
        var other = new Dictionary<string, string>(Other);
        foreach (var (k, v) in values) other[$"{Prefix}{section}.{k}"] = v;
        return this with { Other = other };
    }

    /// <summary>The largest dimension a description may state: beyond it a file is hostile, not a model to build.</summary>
    public const int MaxDimension = 1 << 24;

    private static ClassifierSpec ReadSpec(string kind, Reader keys)
    {
        if (kind is not (ClassifierSpec.Mlp or ClassifierSpec.Cnn or ClassifierSpec.Stack))
            throw keys.Bad("model", kind, $"{ClassifierSpec.Mlp}, {ClassifierSpec.Cnn} or {ClassifierSpec.Stack}");
        var input = keys.Dimensions("input_shape", required: true);
        int classes = keys.Int("classes", 1, MaxDimension) ?? throw keys.Missing("classes");
        var hidden = keys.Dimensions("hidden", required: true);
        var channels = keys.Dimensions("channels", required: false);
        string layers = keys.Text("stack") ?? "";
        if (kind == ClassifierSpec.Stack && layers.Length == 0) throw keys.Missing("stack");
        bool ternary = keys.Parse("ternary", s => s switch { "true" => true, "false" => false, _ => (bool?)null }, "true or false") ?? false;
        if (input.Length == 0) throw keys.Bad("input_shape", "", "one or more dimensions");
        if (kind == ClassifierSpec.Cnn && (input.Length != 3 || hidden.Length != 1 || channels.Length == 0))
            throw keys.Bad("input_shape", Join(input), "channels,height,width with one hidden size and some channels for a CNN");
        long features = input.Aggregate(1L, (a, d) => a * d);
        if (features > MaxDimension) throw keys.Bad("input_shape", Join(input), $"at most {MaxDimension} features");
        return new ClassifierSpec(kind, input, classes, hidden, channels, ternary, layers);
    }

    private static string Join(int[] xs) => string.Join(",", xs);

    /// <summary>Reads keys checked, remembering which it read.</summary>
    private sealed class Reader(IReadOnlyDictionary<string, string> metadata, string origin)
    {
        public HashSet<string> Read { get; } = [];

        public string? Text(string key)
        {
            Read.Add(Prefix + key);
            return metadata.TryGetValue(Prefix + key, out var v) ? v : null;
        }

        public T? Parse<T>(string key, Func<string, T?> parse, string expected) where T : struct =>
            Text(key) is { } s ? parse(s) ?? throw Bad(key, s, expected) : null;

        public int? Int(string key, int min, int max) =>
            Parse(key, s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v >= min && v <= max ? v : (int?)null,
                $"a whole number in [{min}, {max}]");

        public int[] Dimensions(string key, bool required)
        {
            string? s = Text(key);
            if (s == null) return required ? throw Missing(key) : [];
            if (s.Length == 0) return [];
            var parts = s.Split(',');
            var dims = new int[parts.Length];
            for (int i = 0; i < parts.Length; i++)
                if (parts.Length > 64 || !int.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out dims[i])
                    || dims[i] < 1 || dims[i] > MaxDimension)
                    throw Bad(key, s, $"comma-separated sizes in [1, {MaxDimension}]");
            return dims;
        }

        public ColdmindException Bad(string key, string value, string expected) =>
            new($"'{origin}' has a bad {Prefix}{key}: '{Clip(value)}' (expected {expected}).");

        public ColdmindException Missing(string key) =>
            new($"'{origin}' describes a classifier but has no {Prefix}{key}.");

        private static string Clip(string s) => s.Length <= 60 ? s : s[..60] + "…";
    }
}
