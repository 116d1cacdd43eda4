using Coldmind.Formats;
using Coldmind.Models;
using Coldmind.Nn;
using Coldmind.Runtime.Classifier;
using Coldmind.Tensors;
using Xunit;

namespace Coldmind.Tests;

/// <summary>The one door: every kind of model file recognised by its content, and Provenance's checked keys.</summary>
public class ModelFileTests
{
    private static readonly ClassifierSpec Spec = ClassifierSpec.ForMlp([8], 3, [5]);

    private static string Checkpoint(TempDir dir, IReadOnlyDictionary<string, string>? extra = null, string name = "m.safetensors")
    {
        var meta = new Provenance { Spec = Spec, Data = "digits", Seed = 7, TestAccuracy = 0.5 }.ToMetadata();
        foreach (var (k, v) in extra ?? new Dictionary<string, string>()) meta[k] = v;
        string path = dir.File(name);
        TensorFile.Write(path, Spec.Build(new Rng(1)).NamedParameters(), meta);
        return path;
    }

    [Fact]
    public void Every_kind_is_recognised_by_its_content_not_its_extension()
    {
        using var dir = new TempDir();
        string trained = Checkpoint(dir, name: "trained.bin");
        var opened = Assert.IsType<ClassifierFile>(ModelFile.Open(trained));
        Assert.False(opened.IsCompact);
        Assert.Equal(7UL, opened.Provenance.Seed);
        Assert.Equal(Spec.Hidden, opened.Provenance.Spec!.Hidden);

        string compact = dir.File("compact.x");
        CompactClassifier.Compile(Spec.Build(new Rng(1)), opened.File.Metadata).Save(compact);
        Assert.True(Assert.IsType<ClassifierFile>(ModelFile.Open(compact)).IsCompact);

        string plain = dir.File("plain.safetensors");
        TensorFile.Write(plain, [("w", Tensor.Zeros(2, 2))]);
        Assert.IsType<TensorsFile>(ModelFile.Open(plain));

        string recipe = dir.File("r.json");
        File.WriteAllText(recipe, """{"merge_method": "linear", "models": []}""");
        Assert.IsType<MergeRecipeFile>(ModelFile.Open(recipe));
        string network = dir.File("n.json");
        File.WriteAllText(network, """{"name": "x", "layers": []}""");
        Assert.IsType<NetworkDescriptionFile>(ModelFile.Open(network));

        Assert.IsType<GgufModelFile>(ModelFile.Open(SharedFiles.Require("models/stories260K/stories260K.f32.gguf")));
    }

    [Fact]
    public void A_command_that_cannot_use_a_kind_says_what_the_file_is_and_who_takes_it()
    {
        using var dir = new TempDir();
        string plain = dir.File("plain.safetensors");
        TensorFile.Write(plain, [("w", Tensor.Zeros(2, 2))]);
        var e = Assert.Throws<ColdmindException>(() => ClassifierModel.Load(plain));
        Assert.Contains("without Coldmind metadata", e.Message);
        Assert.Contains("quantize and inspect take it", e.Message);
        Assert.Contains("is a folder", Assert.Throws<ColdmindException>(() => ModelFile.Open(dir.Path)).Message);
        e = Assert.Throws<ColdmindException>(() => ClassifierModel.Load(SharedFiles.Require("models/stories260K/stories260K.f32.gguf")));
        Assert.Contains("a GGUF language model", e.Message);
        Assert.Contains("run, chat", e.Message);
    }

    [Theory]
    [InlineData("coldmind.seed", "-1x64")]
    [InlineData("coldmind.seed", "18446744073709551616")]
    [InlineData("coldmind.temperature", "hot")]
    [InlineData("coldmind.temperature", "-1")]
    [InlineData("coldmind.test_accuracy", "1.5")]
    [InlineData("coldmind.hidden", "2147483648")]
    [InlineData("coldmind.hidden", "30000000")]
    [InlineData("coldmind.input_shape", "0")]
    [InlineData("coldmind.classes", "many")]
    [InlineData("coldmind.model", "transformer")]
    [InlineData("coldmind.ternary", "yes")]
    public void A_bad_value_is_an_error_naming_the_key_and_the_file_before_anything_is_built(string key, string value)
    {
        using var dir = new TempDir();
        string path = Checkpoint(dir, new Dictionary<string, string> { [key] = value });
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<ColdmindException>(() => ModelFile.Open(path));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 10_000_000, "refusing a value must not build the model");
        Assert.Contains(key, e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void Provenance_round_trips_every_field_and_keeps_other_keys()
    {
        var p = new Provenance
        {
            Format = Provenance.CompactFormat, Layers = 3, Spec = ClassifierSpec.ForCnn([1, 8, 8], 10, [4, 8], 16), Data = "a.csv", Seed = 12,
            Label = "species", TrainClasses = "0-4", Temperature = 1.75f, TestAccuracy = 0.9, Ptq = "int8/g32", Merge = "{}", Onnx = "m.onnx",
            Other = new Dictionary<string, string> { ["general.name"] = "x" },
        }.WithSection("node", new Dictionary<string, string> { ["model_id"] = "5" });
        var back = Provenance.Read(p.ToMetadata(), "file");
        Assert.Equal(p.ToMetadata(), back.ToMetadata());
        Assert.Equal("5", back.Section("node")["model_id"]);
        Assert.Equal([4, 8], back.Spec!.Channels);
        Assert.Equal(1.75f, back.Temperature);
    }
}
