using Coldmind.Models;
using Coldmind.Data;
using Coldmind.Nn;
using Coldmind.Tensors;

namespace Coldmind.Tests;

/// <summary>Two digits classifiers fine-tuned from one initialisation on disjoint classes (0–4 and 5–9): parents to merge.</summary>
public sealed class DigitsParents : IDisposable
{
    private readonly TempDir _dir = new();
    public string Base { get; }
    public string A { get; }
    public string B { get; }
    public DataSplits Splits { get; } = BuiltinData.Load("digits", 0);
    public ClassifierSpec Spec { get; } = ClassifierSpec.ForMlp([1, 8, 8], 10, [32, 32]);

    public DigitsParents()
    {
        var meta = new Provenance { Spec = Spec }.ToMetadata();
        meta["coldmind.data"] = "digits";
        meta["coldmind.seed"] = "0";
        Base = _dir.File("base.safetensors");
        TensorFile.Write(Base, Spec.Build(new Rng(0)).NamedParameters(), meta);
        A = Train("a.safetensors", [0, 1, 2, 3, 4], meta);
        B = Train("b.safetensors", [5, 6, 7, 8, 9], meta);
    }

    public string File(string name) => _dir.File(name);

    private string Train(string name, int[] classes, Dictionary<string, string> meta)
    {
        var net = Spec.Build(new Rng(0));
        var train = Splits.Train.Subset(Enumerable.Range(0, Splits.Train.Count).Where(i => classes.Contains(Splits.Train.Labels[i])).ToArray());
        Trainer.Fit(net, train, null, new TrainOptions { Epochs = 8, BatchSize = 32, LearningRate = 3e-3f });
        string path = _dir.File(name);
        TensorFile.Write(path, net.NamedParameters(), meta);
        return path;
    }

    public void Dispose() => _dir.Dispose();
}
