using Coldmind.Tensors;

namespace Coldmind.Nn;

/// <summary>
/// A layer or model: named parameters and named child modules, so that every weight has a stable
/// dotted name ("layers.0.weight") for checkpoints, pruning masks and merging.
/// </summary>
public abstract class Module
{
    private readonly List<(string Name, Tensor Tensor)> _parameters = [];
    private readonly List<(string Name, Module Module)> _children = [];

    /// <summary>Training mode enables dropout; evaluation mode disables it.</summary>
    public bool Training { get; private set; } = true;

    public abstract Tensor Forward(Tensor x);

    protected Tensor Parameter(string name, Tensor value)
    {
        _parameters.Add((name, value.AsParameter()));
        return value;
    }

    protected T Child<T>(string name, T module) where T : Module
    {
        _children.Add((name, module));
        return module;
    }

    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters(string prefix = "")
    {
        foreach (var (name, tensor) in _parameters) yield return (prefix + name, tensor);
        foreach (var (name, child) in _children)
            foreach (var p in child.NamedParameters(prefix + name + "."))
                yield return p;
    }

    public IEnumerable<Tensor> Parameters() => NamedParameters().Select(p => p.Tensor);

    /// <summary>This module and all modules below it.</summary>
    public IEnumerable<Module> Modules()
    {
        yield return this;
        foreach (var (_, child) in _children)
            foreach (var m in child.Modules()) yield return m;
    }

    public long ParameterCount => Parameters().Sum(p => (long)p.Numel);

    public void Train(bool on = true)
    {
        Training = on;
        foreach (var (_, child) in _children) child.Train(on);
    }

    public void Eval() => Train(false);

    /// <summary>
    /// Copies values into the parameters by name. Every parameter must be present with its shape, unless
    /// <paramref name="partial"/>: then parameters the state lacks keep their values (e.g. the norms a
    /// ternary model adds when it starts from a float one) and tensors it has beyond them are ignored.
    /// Returns how many parameters were loaded.
    /// </summary>
    public int LoadState(IReadOnlyDictionary<string, Tensor> state, bool partial = false)
    {
        int loaded = 0;
        foreach (var (name, p) in NamedParameters())
        {
            if (!state.TryGetValue(name, out var value))
            {
                if (partial) continue;
                throw new ColdmindException($"The checkpoint has no tensor '{name}'.");
            }
            if (!Tensors.Shape.SameShape(value.Shape, p.Shape))
                throw new ColdmindException($"Tensor '{name}' has shape {Tensors.Shape.Format(value.Shape)} in the checkpoint, the model needs {Tensors.Shape.Format(p.Shape)}.");
            value.CopyStridedTo(p.Span);
            loaded++;
        }
        return loaded;
    }
}

/// <summary>Modules applied one after the other.</summary>
public sealed class Sequential : Module
{
    private readonly Module[] _layers;

    public Sequential(params Module[] layers)
    {
        _layers = layers;
        for (int i = 0; i < layers.Length; i++) Child(i.ToString(System.Globalization.CultureInfo.InvariantCulture), layers[i]);
    }

    public IReadOnlyList<Module> Layers => _layers;

    public override Tensor Forward(Tensor x)
    {
        foreach (var layer in _layers) x = layer.Forward(x);
        return x;
    }
}
