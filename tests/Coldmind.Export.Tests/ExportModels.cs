using Xunit;
using System.Globalization;
using Coldmind.Models;
using Coldmind.Data;
using Coldmind.Nn;
using Coldmind.Quantization;
using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;
using Coldmind.Tensors;

namespace Coldmind.Export.Tests;

/// <summary>
/// Real models of every kind the exporter reads, trained here once for all tests: the default `shrink` on digits
/// (its teacher, ticket, int8 and int4 tickets and the ternary model, as `shrink --stages-out` writes them), a
/// SmallCnn and a ternary MLP from the training engine, and a small Fashion-MNIST shrink (its ternary model).
/// </summary>
public sealed class ExportModels : IDisposable
{
    public string Directory { get; } =
        System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"coldmind-export-tests-{Guid.NewGuid():N}");
    public DataSplits Digits { get; } = BuiltinData.Load("digits");
    private readonly Lazy<DataSplits> _fashion = new(() => BuiltinData.Load("fashion-mnist"));
    private readonly Lazy<string> _fashionTernary;
    public DataSplits Fashion => _fashion.Value;
    /// <summary>The ternary model of a Fashion-MNIST shrink (1 epoch a stage: the export is tested).</summary>
    public string FashionTernary => _fashionTernary.Value;

    public ExportModels()
    {
        System.IO.Directory.CreateDirectory(Directory);
        var result = ShrinkPipeline.Run(Digits, new ShrinkOptions { Epochs = 30 });
        foreach (var (stage, model) in result.Compiled) Save(model, stage.Replace(' ', '-'), "digits");

        var cnnSpec = ClassifierSpec.ForCnn(Digits.Train.SampleShape, 10, [4, 8], 32);
        var cnn = cnnSpec.Build(new Rng(3));
        Trainer.Fit(cnn, Digits.Train, null, new TrainOptions { Epochs = 3, Seed = 3 });
        TensorFile.Write(Path("cnn"), cnn.NamedParameters(), Meta(new Provenance { Spec = cnnSpec }.ToMetadata(), "digits"));

        var bitSpec = ClassifierSpec.ForMlp(Digits.Train.SampleShape, 10, [32, 16], ternary: true);
        var bitnet = bitSpec.Build(new Rng(4));
        Trainer.Fit(bitnet, Digits.Train, null, new TrainOptions { Epochs = 5, Seed = 4 });
        TensorFile.Write(Path("bitnet"), bitnet.NamedParameters(), Meta(new Provenance { Spec = bitSpec }.ToMetadata(), "digits"));

        // what `search` may write: other methods per layer (2-bit, ternary and binary codes, per tensor or per group)
        var mlp = new Mlp(64, [32], 10, new Rng(5));
        Trainer.Fit(mlp, Digits.Train, null, new TrainOptions { Epochs = 5, Seed = 5 });
        Save(CompactClassifier.Compile(mlp, schemes: [PtqScheme.Parse("int2/g32"), PtqScheme.Parse("binary/g32")]),
            "ptq-int2-binary", "digits");
        Save(CompactClassifier.Compile(mlp,
            schemes: [PtqScheme.Parse("ternary/tensor"), PtqScheme.Parse("int4/tensor")]),
            "ptq-ternary-int4", "digits");

        _fashionTernary = new(() =>
        {
            var options = new ShrinkOptions { TeacherHidden = [64], StudentHidden = [32], Epochs = 1, Rounds = 2 };
            var fashion = ShrinkPipeline.Run(Fashion, options);
            Save(fashion.Final, "fashion-ternary", "fashion-mnist");
            return Path("fashion-ternary");
        });
    }

    public string Path(string name) => System.IO.Path.Combine(Directory, name + ".safetensors");

    private void Save(CompactClassifier model, string name, string data) =>
        model.WithMetadata(Meta(model.Metadata, data)).Save(Path(name));

    private static Dictionary<string, string> Meta(IReadOnlyDictionary<string, string> meta, string data) =>
        new(meta) { ["coldmind.data"] = data, ["coldmind.seed"] = 0.ToString(CultureInfo.InvariantCulture) };

    public void Dispose() => System.IO.Directory.Delete(Directory, true);
}

[CollectionDefinition("export models")]
public sealed class ExportModelsCollection : ICollectionFixture<ExportModels>;
