using System.Globalization;
using Coldmind.Formats;
using Coldmind.Models;

namespace Coldmind.Swarm;

/// <summary>
/// What a swarm process (gossip node, FedAvg coordinator or client) saves to resume: flat models and metadata in
/// one safetensors file, written atomically, tagged with the model id so a checkpoint of another model (other
/// data, hidden layers or seed) is refused rather than loaded. Every key is in the <c>coldmind.{kind}.*</c> section of its
/// <see cref="Provenance"/>.
/// </summary>
public sealed class SwarmCheckpoint
{
    private readonly Safetensors.File _file;
    private readonly IReadOnlyDictionary<string, string> _section;
    private readonly string _path;
    private readonly int _parameters;

    private SwarmCheckpoint(Safetensors.File file, IReadOnlyDictionary<string, string> section, string path, int parameters) =>
        (_file, _section, _path, _parameters) = (file, section, path, parameters);

    public static void Write(string path, string kind, LocalLearner learner, IEnumerable<(string Name, float[] Values)> models, IReadOnlyDictionary<string, string> meta)
    {
        var section = new Dictionary<string, string>(meta) { ["model_id"] = learner.ModelId.ToString(CultureInfo.InvariantCulture) };
        Safetensors.Write(path, models.Select(m => (m.Name, new Safetensors.Array([m.Values.Length], m.Values))),
            new Provenance().WithSection(kind, section).ToMetadata());
    }

    /// <summary>Opens a checkpoint written by <see cref="Write"/> for the same kind and model; anything else is a one-line error.</summary>
    public static SwarmCheckpoint Read(string path, string kind, string description, LocalLearner learner)
    {
        var file = Safetensors.Read(path);
        var checkpoint = new SwarmCheckpoint(file, Provenance.Read(file.Metadata, path).Section(kind), path, learner.ParameterCount);
        if (!checkpoint._section.TryGetValue("model_id", out var id))
            throw new ColdmindException($"'{path}' is not a {description} checkpoint (it has no {kind} model id).");
        if (id != learner.ModelId.ToString(CultureInfo.InvariantCulture))
            throw new ColdmindException($"The checkpoint '{path}' holds another model (different data, --hidden or --seed); move it away to start afresh.");
        return checkpoint;
    }

    public string Text(string name) => _section.TryGetValue(name, out var v) ? v
        : throw new ColdmindException($"The checkpoint '{_path}' lacks its {name}.");

    /// <summary>A whole number of at least <paramref name="minimum"/>.</summary>
    public long Count(string name, long minimum = 0) =>
        long.TryParse(Text(name), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) && v >= minimum ? v : throw Bad(name);

    public double NonNegative(string name) =>
        double.TryParse(Text(name), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && v >= 0 ? v : throw Bad(name);

    /// <summary>The one-line error for a field that does not hold what it should.</summary>
    public ColdmindException Bad(string name) => new(_section.TryGetValue(name, out var v)
        ? $"The checkpoint '{_path}' holds a bad {name}: '{v}'." : $"The checkpoint '{_path}' holds a bad {name}.");

    public bool Has(string model) => _file.Arrays.ContainsKey(model);

    public bool HasText(string name) => _section.ContainsKey(name);

    /// <summary>A model of the learner's size with every value finite.</summary>
    public float[] Model(string name) => Values(name, _parameters);

    /// <summary>A vector of finite values, of <paramref name="length"/> values unless that is negative.</summary>
    public float[] Values(string name, int length = -1) =>
        _file.Arrays.TryGetValue(name, out var t) && (length < 0 || t.Values.Length == length) && t.Values is var values && values.All(float.IsFinite) ? values
        : throw new ColdmindException($"The checkpoint '{_path}' has no finite {name}{(length < 0 ? "" : $" of {length} values")}.");
}
