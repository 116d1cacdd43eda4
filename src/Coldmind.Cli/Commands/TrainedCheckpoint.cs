using Coldmind.Data;
using Coldmind.Formats;
using Coldmind.Models;
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
    public static TrainedCheckpoint Load(string path, string? data = null, ulong? seed = null, string? label = null)
    {
        var checkpoint = ModelFile.Open(path) switch
        {
            OnnxModelFile onnx => onnx.Import(data, seed, label),
            ClassifierFile { IsCompact: false } c => c,
            var other => throw other.NotA("a checkpoint written by `coldmind train` or an ONNX classifier"),
        };
        var (file, spec) = (checkpoint.File, checkpoint.Provenance.Spec!);
        var (dataSpec, splits) = TrainingData.SplitsOf(checkpoint.Provenance, data, seed, label);
        var test = splits.Test;
        if (!test.SampleShape.SequenceEqual(spec.InputShape) || test.Classes != spec.Classes)
            throw new ColdmindException($"'{path}' expects inputs {Shape.Format(spec.InputShape)} and {spec.Classes} classes; '{dataSpec}' has {Shape.Format(test.SampleShape)} and {test.Classes}.");
        return new TrainedCheckpoint(path, file, spec, dataSpec, test);
    }

    /// <summary>Test accuracy of the model with <paramref name="state"/> as its weights (default: the checkpoint's).</summary>
    public float Accuracy(IReadOnlyDictionary<string, Tensor>? state = null)
    {
        var net = Spec.Build(new Rng(0));
        net.LoadState(state ?? File.ToTensors());
        return Trainer.Accuracy(net, Test);
    }
}
