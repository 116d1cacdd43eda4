using System.Globalization;
using Coldmind.Data;
using Coldmind.Formats;
using Coldmind.Nn;
using Coldmind.Tensors;

namespace Coldmind.Cli.Commands;

/// <summary>A classifier checkpoint written by `coldmind train --out`, with the test split it is measured on.</summary>
internal sealed record TrainedCheckpoint(string Path, Safetensors.File File, ClassifierSpec Spec, string DataSpec, Dataset Test)
{
    /// <summary>
    /// Reads the checkpoint and its test split: by default the data and split seed it was trained with (from its
    /// metadata), so the test examples are the ones training never saw.
    /// </summary>
    public static TrainedCheckpoint Load(string path, string? data = null, ulong? seed = null)
    {
        var file = path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase) ? Export.Onnx.OnnxImporter.Import(path, data, seed).AsFile() : Safetensors.Read(path);
        var spec = ClassifierSpec.FromMetadata(file.Metadata, path);
        var (dataSpec, splits) = SplitsOf(file.Metadata, data, seed);
        var test = splits.Test;
        if (!test.SampleShape.SequenceEqual(spec.InputShape) || test.Classes != spec.Classes)
            throw new ColdmindException($"'{path}' expects inputs {Shape.Format(spec.InputShape)} and {spec.Classes} classes; '{dataSpec}' has {Shape.Format(test.SampleShape)} and {test.Classes}.");
        return new TrainedCheckpoint(path, file, spec, dataSpec, test);
    }

    /// <summary>
    /// The splits a checkpoint was trained with, from its metadata (data, split seed, CSV label column) unless
    /// <paramref name="data"/> or <paramref name="seed"/> say otherwise.
    /// </summary>
    public static (string DataSpec, DataSplits Splits) SplitsOf(IReadOnlyDictionary<string, string> metadata, string? data = null, ulong? seed = null)
    {
        string dataSpec = data ?? metadata.GetValueOrDefault("coldmind.data") ?? "digits";
        ulong s = seed ?? (metadata.TryGetValue("coldmind.seed", out var sv) ? ulong.Parse(sv, CultureInfo.InvariantCulture) : 0);
        return (dataSpec, BuiltinData.Load(dataSpec, s, metadata.GetValueOrDefault("coldmind.label")));
    }

    /// <summary>Test accuracy of the model with <paramref name="state"/> as its weights (default: the checkpoint's).</summary>
    public float Accuracy(IReadOnlyDictionary<string, Tensor>? state = null)
    {
        var net = Spec.Build(new Rng(0));
        net.LoadState(state ?? File.Tensors);
        return Trainer.Accuracy(net, Test);
    }
}
