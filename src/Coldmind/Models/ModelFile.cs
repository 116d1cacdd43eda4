using System.Text;
using System.Text.Json;
using Coldmind.Formats;
using Coldmind.Models.Onnx;

namespace Coldmind.Models;

/// <summary>
/// The one door for model files: <see cref="Open"/> recognises every kind Coldmind reads or writes by its content
/// (not its extension) and returns a typed handle. The runtimes build from the handle
/// (<c>ClassifierModel.From</c>, <c>LanguageModel.Load</c>, <c>Workload.Of</c>, …); a command that cannot use a kind
/// says what the file is and which commands take it (<see cref="NotA"/>).
/// </summary>
public abstract record ModelFile(string Path)
{
    /// <summary>What the file is, for messages: "a compact classifier (written by shrink, ptq or search)".</summary>
    public abstract string Kind { get; }
    /// <summary>The commands that take this kind.</summary>
    public abstract string TakenBy { get; }

    /// <summary>Largest JSON description or recipe read whole.</summary>
    private const int MaxJsonBytes = 16 << 20;

    public static ModelFile Open(string path)
    {
        if (!File.Exists(path))
            throw new ColdmindException(Directory.Exists(path) ? $"'{path}' is a folder, not a model file." : $"Model '{path}' does not exist.");
        Span<byte> head = stackalloc byte[8];
        int read;
        long length;
        using (var s = File.OpenRead(path))
        {
            length = s.Length;
            read = s.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        if (read >= 4 && head[..4].SequenceEqual("GGUF"u8)) return new GgufModelFile(path);
        // protobuf has no magic number: ONNX files are known by their extension
        if (path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) return new OnnxModelFile(path);
        int first = head[..read].IndexOfAnyExcept(" \t\r\n"u8);
        if (first >= 0 && head[first] == (byte)'{') return OpenJson(path, length);
        if (read < 8) throw new ColdmindException($"'{path}' is not a model file Coldmind knows: {length} bytes, too short for any.");
        var st = Safetensors.Read(path);
        var provenance = Provenance.Read(st.Metadata, path);
        if (provenance.IsCompactClassifier || provenance.Spec != null) return new ClassifierFile(path, st, provenance);
        if (SwarmCheckpointFile.SectionOf(provenance) is { } section) return new SwarmCheckpointFile(path, st, provenance, section);
        return new TensorsFile(path, st, provenance);
    }

    private static ModelFile OpenJson(string path, long length)
    {
        if (length > MaxJsonBytes) throw new ColdmindException($"'{path}' is a JSON file of {length} bytes; model descriptions and recipes are smaller.");
        string text = File.ReadAllText(path, Encoding.UTF8);
        try
        {
            using var doc = JsonDocument.Parse(text);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("merge_method", out _))
                return new MergeRecipeFile(path, text);
            return new NetworkDescriptionFile(path, text);
        }
        catch (JsonException e)
        {
            throw new ColdmindException($"'{path}' is not valid JSON: {e.Message}");
        }
    }

    /// <summary>The error for a command that needs <paramref name="wanted"/> and was given this file.</summary>
    public ColdmindException NotA(string wanted) => new($"'{Path}' is {Kind}, not {wanted}; {TakenBy} take it.");
}

/// <summary>A model stored as safetensors, with what its metadata says of it.</summary>
public abstract record SafetensorsModelFile(string Path, Safetensors.File File, Provenance Provenance) : ModelFile(Path);

/// <summary>A classifier: a checkpoint written by train (its <see cref="Provenance.Spec"/> set) or a compact one written by shrink.</summary>
public sealed record ClassifierFile(string Path, Safetensors.File File, Provenance Provenance) : SafetensorsModelFile(Path, File, Provenance)
{
    public bool IsCompact => Provenance.IsCompactClassifier;
    public override string Kind => IsCompact ? "a compact classifier (written by shrink, ptq or search)"
        : $"a classifier checkpoint ({Provenance.Spec!.Describe()}, written by train)";
    public override string TakenBy => "predict, eval, cost, modal, cascade, serve, adapt, ptq, merge, evolve and inspect";
}

/// <summary>A GGUF file: a language model (llama, bitnet) or anything else llama.cpp writes.</summary>
public sealed record GgufModelFile(string Path) : ModelFile(Path)
{
    public override string Kind => "a GGUF language model";
    public override string TakenBy => "run, chat, bench, cost, modal, quantize, merge and inspect";
}

/// <summary>An ONNX model; <see cref="Import"/> reads the classifier graphs torch.onnx.export writes (see <see cref="OnnxImporter"/>).</summary>
public sealed record OnnxModelFile(string Path) : ModelFile(Path)
{
    public override string Kind => "an ONNX model";
    public override string TakenBy => "import, eval, predict, cost, modal, ptq, export and shrink --teacher";

    /// <summary>The classifier, taking the raw features of <paramref name="data"/> (default: the data its metadata names).</summary>
    public ClassifierFile Import(string? data = null, ulong? seed = null, string? label = null)
    {
        var imported = OnnxImporter.Import(Path, data, seed, label);
        return new ClassifierFile(Path, imported.AsFile(), imported.Provenance);
    }
}

/// <summary>Safetensors with no Coldmind classifier metadata (e.g. a Hugging Face checkpoint).</summary>
public sealed record TensorsFile(string Path, Safetensors.File File, Provenance Provenance) : SafetensorsModelFile(Path, File, Provenance)
{
    public override string Kind => $"a safetensors file of {File.Arrays.Count} tensors without Coldmind metadata (not a compact classifier nor a train checkpoint)";
    public override string TakenBy => "quantize and inspect";
}

/// <summary>What a swarm process saves to resume (<c>coldmind.{section}.*</c> keys).</summary>
public sealed record SwarmCheckpointFile(string Path, Safetensors.File File, Provenance Provenance, string Section)
    : SafetensorsModelFile(Path, File, Provenance)
{
    public override string Kind => $"a swarm checkpoint ({Section})";
    public override string TakenBy => "node and coordinator (--checkpoint)";

    /// <summary>The section whose <c>model_id</c> the metadata holds, if any.</summary>
    public static string? SectionOf(Provenance p) =>
        p.Other.Keys.Select(k => k.Split('.')).FirstOrDefault(k => k.Length == 3 && k[0] == "coldmind" && k[2] == "model_id")?[1];
}

/// <summary>A mergekit-style merge recipe (JSON with a merge_method).</summary>
public sealed record MergeRecipeFile(string Path, string Json) : ModelFile(Path)
{
    public override string Kind => "a merge recipe";
    public override string TakenBy => "merge";
}

/// <summary>A network description (JSON: the layers of a published model, for the cost model).</summary>
public sealed record NetworkDescriptionFile(string Path, string Json) : ModelFile(Path)
{
    public override string Kind => "a network description";
    public override string TakenBy => "cost and modal";
}
