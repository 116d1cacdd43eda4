using Coldmind.Formats;

namespace Coldmind.Tensors;

/// <summary>Safetensors files seen as tensors: the Formats layer stores plain arrays, this is their Tensor view.</summary>
public static class TensorFile
{
    /// <summary>Every stored array as a tensor sharing its memory (a new dictionary each call: call it once).</summary>
    public static IReadOnlyDictionary<string, Tensor> ToTensors(this Safetensors.File file) =>
        file.Arrays.ToDictionary(a => a.Key, a => Tensor.FromArray(a.Value.Values, a.Value.Shape));

    /// <summary>Writes tensors (their current values) as <see cref="Safetensors.Write"/> does.</summary>
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        IReadOnlyDictionary<string, string>? dtypes = null) =>
        Safetensors.Write(path, tensors.Select(t => (t.Name, new Safetensors.Array(t.Tensor.Shape.ToArray(), t.Tensor.ToArray()))), metadata, dtypes);
}
