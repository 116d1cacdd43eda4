using Coldmind.Formats.Onnx;

namespace Coldmind.Export.Onnx;

/// <summary>Collects nodes and constants in topological order, naming every value uniquely.</summary>
internal sealed class OnnxGraphBuilder
{
    private readonly List<OnnxNode> _nodes = [];
    private readonly List<OnnxTensor> _constants = [];
    private int _count;

    private string Fresh(string hint) => $"{hint}_{_count++}";

    public string Constant(string hint, float[] values, params long[] dims) =>
        Add(OnnxTensor.Of(Fresh(hint), values, dims));

    public string Constant(string hint, long[] values, params long[] dims) =>
        Add(OnnxTensor.Of(Fresh(hint), values, dims));

    public string Codes(string hint, sbyte[] values, bool int4, params long[] dims) =>
        Add(OnnxTensor.Of(Fresh(hint), values, int4, dims));

    private string Add(OnnxTensor t)
    {
        _constants.Add(t);
        return t.Name;
    }

    /// <summary>Appends a node; returns the name of its (single) output, or <paramref name="output"/> when
    /// given.</summary>
    public string Node(string op, string[] inputs, OnnxAttribute[]? attributes = null, string? output = null)
    {
        output ??= Fresh(op.ToLowerInvariant());
        _nodes.Add(new OnnxNode(Fresh(op), op, "", inputs, [output], attributes ?? []));
        return output;
    }

    public OnnxGraph Build(string name, IReadOnlyList<OnnxValue> inputs, IReadOnlyList<OnnxValue> outputs) =>
        new(name, _nodes, _constants, inputs, outputs);
}
