using System.Globalization;
using Coldmind.Formats;
using Coldmind.Tensors;

namespace Coldmind.Swarm;

/// <summary>
/// What a swarm process (gossip node, FedAvg coordinator or client) saves to resume: flat models and metadata in
/// one safetensors file, written atomically, tagged with the model id so a checkpoint of another model (other
/// data, hidden layers or seed) is refused rather than loaded. Every key is <c>coldmind.{kind}.{name}</c>.
/// </summary>
public sealed class SwarmCheckpoint
{
    private readonly Safetensors.File _file;
    private readonly string _path, _kind;
    private readonly int _parameters;

    private SwarmCheckpoint(Safetensors.File file, string path, string kind, int parameters) => (_file, _path, _kind, _parameters) = (file, path, kind, parameters);

    public static void Write(string path, string kind, LocalLearner learner, IEnumerable<(string Name, float[] Values)> models, IReadOnlyDictionary<string, string> meta)
    {
        var all = meta.ToDictionary(m => $"coldmind.{kind}.{m.Key}", m => m.Value);
        all[$"coldmind.{kind}.model_id"] = learner.ModelId.ToString(CultureInfo.InvariantCulture);
        TensorFile.Write(path, models.Select(m => (m.Name, Tensor.FromArray(m.Values, m.Values.Length))), all);
    }

    /// <summary>Opens a checkpoint written by <see cref="Write"/> for the same kind and model; anything else is a one-line error.</summary>
    public static SwarmCheckpoint Read(string path, string kind, string description, LocalLearner learner)
    {
        var checkpoint = new SwarmCheckpoint(Safetensors.Read(path), path, kind, learner.ParameterCount);
        if (!checkpoint._file.Metadata.TryGetValue($"coldmind.{kind}.model_id", out var id))
            throw new ColdmindException($"'{path}' is not a {description} checkpoint (no coldmind.{kind}.model_id).");
        if (id != learner.ModelId.ToString(CultureInfo.InvariantCulture))
            throw new ColdmindException($"The checkpoint '{path}' holds another model (different data, --hidden or --seed); move it away to start afresh.");
        return checkpoint;
    }

    public string Text(string name) => _file.Metadata.TryGetValue($"coldmind.{_kind}.{name}", out var v) ? v
        : throw new ColdmindException($"The checkpoint '{_path}' lacks coldmind.{_kind}.{name}.");

    /// <summary>A whole number of at least <paramref name="minimum"/>.</summary>
    public long Count(string name, long minimum = 0) =>
        long.TryParse(Text(name), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) && v >= minimum ? v : throw Bad(name);

    public double NonNegative(string name) =>
        double.TryParse(Text(name), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v >= 0 ? v : throw Bad(name);

    /// <summary>The one-line error for a field that does not hold what it should.</summary>
    public ColdmindException Bad(string name) => new(_file.Metadata.TryGetValue($"coldmind.{_kind}.{name}", out var v)
        ? $"The checkpoint '{_path}' holds a bad {name}: '{v}'." : $"The checkpoint '{_path}' holds a bad {name}.");

    public bool Has(string model) => _file.Tensors.ContainsKey(model);

    public bool HasText(string name) => _file.Metadata.ContainsKey($"coldmind.{_kind}.{name}");

    /// <summary>A model of the learner's size with every value finite.</summary>
    public float[] Model(string name) => Values(name, _parameters);

    /// <summary>A vector of finite values, of <paramref name="length"/> values unless that is negative.</summary>
    public float[] Values(string name, int length = -1) =>
        _file.Tensors.TryGetValue(name, out var t) && (length < 0 || t.Numel == length) && t.ToArray() is var values && values.All(float.IsFinite) ? values
        : throw new ColdmindException($"The checkpoint '{_path}' has no finite {name}{(length < 0 ? "" : $" of {length} values")}.");
}
