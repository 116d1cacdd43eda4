using System.Text.Json.Nodes;
using System.Text.Json;

namespace Coldmind.Merging;

/// <summary>
/// A merge parameter: one value, or a list of (filter, value) where the first entry whose filter occurs in a
/// tensor's name applies and an entry without a filter is the default (mergekit's convention). Evolved recipes
/// use one entry per layer ("net.1.", "blk.3.").
/// </summary>
public sealed record MergeParameter(IReadOnlyList<(string? Filter, float Value)> Entries)
{
    public static MergeParameter Of(float value) => new([(null, value)]);

    public float? For(string tensorName)
    {
        foreach (var (filter, value) in Entries)
            if (filter == null || tensorName.Contains(filter, StringComparison.Ordinal)) return value;
        return null;
    }

    public JsonNode ToJson() => Entries is [(null, var v)] ? JsonValue.Create(v)
        : new JsonArray(Entries.Select(e => (JsonNode)(e.Filter == null ? new JsonObject { ["value"] = e.Value } : new JsonObject { ["filter"] = e.Filter, ["value"] = e.Value })).ToArray());
}

/// <summary>A model a recipe names: a file (relative to the recipe) or another recipe, merged first.</summary>
public sealed record ModelSource(string? Path, MergeRecipe? Recipe)
{
    public static ModelSource File(string path) => new(path, null);

    public static ModelSource Of(MergeRecipe recipe) => new(null, recipe);

    public JsonNode ToJson() => Recipe != null ? Recipe.ToJson() : JsonValue.Create(Path!);
}

public sealed record RecipeModel(ModelSource Source, IReadOnlyDictionary<string, MergeParameter> Parameters);

/// <summary>Layers [Start, End) of a model, each output scaled by <see cref="Scale"/>: one piece of a layer stack.</summary>
public sealed record LayerSlice(ModelSource Source, int Start, int End, float Scale = 1f);

/// <summary>
/// How to merge models, in the spirit of mergekit's YAML (as JSON):
/// <code>
/// { "merge_method": "ties", "base_model": "base.safetensors",
///   "models": [ { "model": "a.safetensors", "parameters": { "weight": 1.0, "density": 0.5 } },
///               { "model": "b.safetensors", "parameters": { "weight": [ { "filter": "net.5.", "value": 0.7 }, { "value": 1.0 } ] } } ],
///   "parameters": { "normalize": true, "lambda": 1.0 } }
/// </code>
/// Methods: linear, task_arithmetic, ties, dare_linear, dare_ties (these four need base_model), slerp (base_model
/// and one model, parameter t) and passthrough (layer stacking: "slices": [{ "model": …, "layer_range": [0, 2],
/// "scale": 1.0 }], the frame of a language model from base_model or the first slice). A "model" may itself be a
/// recipe object, merged first. The top-level parameter "keep" (a fraction, per layer if filtered) prunes the
/// child's weight matrices by magnitude after the merge. "ternary": "ternarized" merges a ternary classifier's ternarized weights instead
/// of its latent float ones; "seed" seeds DARE's drops.
/// </summary>
public sealed record MergeRecipe(string Method, ModelSource? Base, IReadOnlyList<RecipeModel> Models, IReadOnlyDictionary<string, MergeParameter> Parameters,
    IReadOnlyList<LayerSlice> Slices, bool Ternarized = false, ulong Seed = 0)
{
    public static readonly string[] Methods = ["linear", "task_arithmetic", "ties", "dare_linear", "dare_ties", "slerp", "passthrough"];
    private static readonly string[] ParameterNames = ["weight", "density", "t", "lambda", "normalize", "keep"];

    public bool NeedsBase => Method is "task_arithmetic" or "ties" or "dare_linear" or "dare_ties" or "slerp";

    public static MergeRecipe Load(string path)
    {
        string text;
        try { text = System.IO.File.ReadAllText(path); }
        catch (FileNotFoundException) { throw new ColdmindException($"Recipe '{path}' does not exist."); }
        return Parse(text, System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!, path);
    }

    /// <summary>Parses and checks a recipe; relative model paths are resolved against <paramref name="directory"/>.</summary>
    public static MergeRecipe Parse(string json, string directory, string origin = "the recipe")
    {
        if (string.IsNullOrWhiteSpace(json)) throw new ColdmindException($"{origin} is empty; it needs at least \"merge_method\" and its models.");
        JsonNode? root;
        try { root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }); }
        catch (JsonException e) { throw new ColdmindException($"{origin} is not valid JSON: {e.Message}"); }
        if (root is not JsonObject obj) throw new ColdmindException($"{origin} is empty or not a JSON object; it needs at least \"merge_method\" and its models.");
        return Parse(obj, directory, origin);
    }

    private static MergeRecipe Parse(JsonObject obj, string directory, string origin)
    {
        foreach (var (key, _) in obj)
            if (key is not ("merge_method" or "base_model" or "models" or "parameters" or "slices" or "ternary" or "seed"))
                throw new ColdmindException($"{origin}: unknown key \"{key}\"; known: merge_method, base_model, models, parameters, slices, ternary, seed.");
        string method = obj["merge_method"] is JsonValue mv && mv.TryGetValue(out string? m) ? m
            : throw new ColdmindException($"{origin} has no \"merge_method\"; use one of {string.Join(", ", Methods)}.");
        if (!Methods.Contains(method)) throw new ColdmindException($"{origin}: unknown merge_method '{method}'; use one of {string.Join(", ", Methods)}.");
        var @base = obj["base_model"] is { } b ? Source(b, directory, origin) : null;
        var models = new List<RecipeModel>();
        if (obj["models"] is JsonArray ms)
            foreach (var item in ms)
            {
                if (item is not JsonObject mo || mo["model"] is not { } src) throw new ColdmindException($"{origin}: each entry of \"models\" needs a \"model\".");
                models.Add(new RecipeModel(Source(src, directory, origin), ReadParameters(mo["parameters"], origin)));
            }
        else if (obj["models"] != null) throw new ColdmindException($"{origin}: \"models\" must be a list.");
        var slices = new List<LayerSlice>();
        if (obj["slices"] is JsonArray ss)
            foreach (var item in ss)
            {
                if (item is not JsonObject so || so["model"] is not { } src || so["layer_range"] is not JsonArray { Count: 2 } range)
                    throw new ColdmindException($"{origin}: each slice needs \"model\" and \"layer_range\": [start, end).");
                int start = Int(range[0], "layer_range", origin), end = Int(range[1], "layer_range", origin);
                if (start < 0 || end <= start) throw new ColdmindException($"{origin}: layer_range [{start}, {end}) is empty or negative.");
                slices.Add(new LayerSlice(Source(src, directory, origin), start, end, so["scale"] is { } sc ? Number(sc, "scale", origin) : 1f));
            }
        string ternary = obj["ternary"] is JsonValue tv && tv.TryGetValue(out string? t) ? t : "latent";
        if (ternary is not ("latent" or "ternarized")) throw new ColdmindException($"{origin}: \"ternary\" is latent or ternarized, got '{ternary}'.");
        ulong seed = obj["seed"] is { } sv ? (ulong)Int(sv, "seed", origin) : 0;
        var recipe = new MergeRecipe(method, @base, models, ReadParameters(obj["parameters"], origin), slices, ternary == "ternarized", seed);
        recipe.Validate(origin);
        return recipe;
    }

    public void Validate(string origin = "the recipe")
    {
        if (Method == "passthrough")
        {
            if (Slices.Count == 0) throw new ColdmindException($"{origin}: passthrough needs \"slices\", the layers to stack.");
            if (Models.Count > 0) throw new ColdmindException($"{origin}: passthrough takes \"slices\", not \"models\".");
            return;
        }
        if (Slices.Count > 0) throw new ColdmindException($"{origin}: \"slices\" belong to passthrough, not {Method}.");
        if (Models.Count == 0) throw new ColdmindException($"{origin} lists no models to merge.");
        if (NeedsBase && Base == null) throw new ColdmindException($"{origin}: {Method} needs a \"base_model\" (the model the others were fine-tuned from{(Method == "slerp" ? ", or the first end of the interpolation" : "")}).");
        if (Method == "slerp" && Models.Count != 1) throw new ColdmindException($"{origin}: slerp interpolates base_model and one other model; {Models.Count} are listed.");
        if (Method == "linear" && Models.Count < 2) throw new ColdmindException($"{origin}: linear needs at least two models.");
    }

    private static ModelSource Source(JsonNode node, string directory, string origin) => node switch
    {
        JsonValue v when v.TryGetValue(out string? path) && path.Length > 0 => ModelSource.File(System.IO.Path.GetFullPath(path, directory)),
        JsonObject o => ModelSource.Of(Parse(o, directory, origin + " (nested recipe)")),
        _ => throw new ColdmindException($"{origin}: a model is a file path or a nested recipe object, got {node.ToJsonString()}."),
    };

    private static Dictionary<string, MergeParameter> ReadParameters(JsonNode? node, string origin)
    {
        var result = new Dictionary<string, MergeParameter>();
        if (node == null) return result;
        if (node is not JsonObject obj) throw new ColdmindException($"{origin}: \"parameters\" must be an object.");
        foreach (var (name, value) in obj)
        {
            if (!ParameterNames.Contains(name)) throw new ColdmindException($"{origin}: unknown parameter \"{name}\"; known: {string.Join(", ", ParameterNames)}.");
            result[name] = value switch
            {
                JsonValue v when v.TryGetValue(out bool flag) => MergeParameter.Of(flag ? 1 : 0),
                JsonArray list => new MergeParameter(list.Select(e => e is JsonObject eo && eo["value"] is { } ev
                    ? (eo["filter"]?.GetValue<string>(), Number(ev, name, origin))
                    : throw new ColdmindException($"{origin}: each entry of \"{name}\" is {{\"filter\": …, \"value\": …}}.")).ToList()),
                { } v => MergeParameter.Of(Number(v, name, origin)),
                null => throw new ColdmindException($"{origin}: parameter \"{name}\" has no value."),
            };
        }
        return result;
    }

    private static float Number(JsonNode node, string what, string origin)
    {
        float v = node is JsonValue jv && jv.TryGetValue(out double d) ? (float)d : float.NaN;
        return float.IsFinite(v) ? v : throw new ColdmindException($"{origin}: \"{what}\" must be a finite number, got {node.ToJsonString()}.");
    }

    private static int Int(JsonNode? node, string what, string origin) =>
        node is JsonValue jv && jv.TryGetValue(out int i) ? i : throw new ColdmindException($"{origin}: \"{what}\" must hold whole numbers, got {node?.ToJsonString() ?? "nothing"}.");

    public JsonObject ToJson()
    {
        var obj = new JsonObject { ["merge_method"] = Method };
        if (Base != null) obj["base_model"] = Base.ToJson();
        if (Models.Count > 0)
            obj["models"] = new JsonArray(Models.Select(m => (JsonNode)new JsonObject
            {
                ["model"] = m.Source.ToJson(),
                ["parameters"] = ParametersJson(m.Parameters),
            }).ToArray());
        if (Slices.Count > 0)
            obj["slices"] = new JsonArray(Slices.Select(s => (JsonNode)new JsonObject
            {
                ["model"] = s.Source.ToJson(),
                ["layer_range"] = new JsonArray(s.Start, s.End),
                ["scale"] = s.Scale,
            }).ToArray());
        if (Parameters.Count > 0) obj["parameters"] = ParametersJson(Parameters);
        if (Ternarized) obj["ternary"] = "ternarized";
        if (Method.StartsWith("dare", StringComparison.Ordinal)) obj["seed"] = Seed;
        return obj;
    }

    public string ToJsonString() => ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true });

    private static JsonObject ParametersJson(IReadOnlyDictionary<string, MergeParameter> ps)
    {
        var obj = new JsonObject();
        foreach (var (k, v) in ps) obj[k] = k == "normalize" ? v.For("") != 0 : v.ToJson();
        return obj;
    }
}
