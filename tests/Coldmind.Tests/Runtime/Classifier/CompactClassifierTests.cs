using System.Text.Json;
using Xunit;
using Coldmind.Data;
using Coldmind.Formats;
using Coldmind.Nn;
using Coldmind.Quantization;
using Coldmind.Runtime.Classifier;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class CompactClassifierTests
{
    [Fact]
    public void Compiled_models_predict_what_the_modules_predict_and_survive_save_and_load()
    {
        var splits = BuiltinData.Load("digits");
        var test = splits.Test;
        using var dir = new TempDir();
        foreach (bool ternary in new[] { false, true })
        {
            var model = new Mlp(64, [48], 10, new Rng(3), ternary: ternary);
            Trainer.Fit(model, splits.Train, null, new TrainOptions { Epochs = 4 });
            var mask = PruningMask.Dense(model).Prune(0.6, global: true);
            mask.Apply();
            var compact = CompactClassifier.Compile(model);
            Assert.Contains(ternary ? "ternary" : "sparse", compact.Describe());
            var path = dir.File($"m{ternary}.safetensors");
            compact.Save(path);
            var loaded = CompactClassifier.Load(path);
            var logits = Trainer.Logits(model, test);
            for (int i = 0; i < test.Count; i++)
            {
                var x = test.Features.AsSpan(i * 64, 64);
                var a = compact.Predict(x);
                var b = loaded.Predict(x);
                Assert.Equal(a, b);
                for (int c = 0; c < 10; c++) Assert.Equal(logits[i * 10 + c], a[c], 2e-3f * (1 + Math.Abs(logits[i * 10 + c])));
            }
        }
    }

    [Theory]
    [InlineData("int8/g32")]
    [InlineData("int4/g32")]
    [InlineData("int2/g32")]
    [InlineData("ternary/g32")]
    [InlineData("binary/tensor")]
    public void Quantized_layers_compute_the_rounded_weights_dense_or_sparse_and_survive_save_and_load(string schemeText)
    {
        var scheme = PtqScheme.Parse(schemeText);
        var splits = BuiltinData.Load("digits");
        var test = splits.Test;
        using var dir = new TempDir();
        foreach (double pruned in new[] { 0.0, 0.9 })
        {
            var model = new Mlp(64, [48], 10, new Rng(5));
            Trainer.Fit(model, splits.Train, null, new TrainOptions { Epochs = 3 });
            if (pruned > 0) PruningMask.Dense(model).Prune(pruned, global: false).Apply();
            var compact = CompactClassifier.Compile(model, schemes: [scheme, null]);
            // the reference: the module with its weights rounded by the scheme, scales in f16 as stored
            var rounded = new Mlp(64, [48], 10, new Rng(0));
            rounded.LoadState(model.NamedParameters().ToDictionary(p => p.Name, p => p.Name == "net.1.weight" ? Tensor.FromArray(F16Apply(scheme, p.Tensor.ToArray(), 64), p.Tensor.Shape) : p.Tensor));
            var expected = Trainer.Logits(rounded, test);
            var path = dir.File($"q{pruned}.safetensors");
            compact.Save(path);
            var loaded = CompactClassifier.Load(path);
            var (kind, rows, cols, nonZeros, bytes) = loaded.LayerShapes().First();
            Assert.StartsWith("quantized:" + scheme.Method.ToString().ToLowerInvariant(), kind);
            // stored dense or as CSR over the nonzero codes, whichever is smaller; plus f16 scales and the f32 bias
            long nonZeroCodes = rounded.NamedParameters().First(p => p.Name == "net.1.weight").Tensor.ToArray().Count(v => v != 0);
            long dense = CodePacking.ByteCount(rows * cols, scheme.Method), sparse = CodePacking.ByteCount(nonZeroCodes, scheme.Method) + 2 * nonZeroCodes + 4 * (rows + 1);
            Assert.Equal(sparse < dense, kind.EndsWith(":sparse"));
            Assert.Equal(nonZeroCodes, nonZeros);
            Assert.Equal(Math.Min(dense, sparse) + 2L * (scheme.GroupSize > 0 ? rows * 2 : 1) + 4 * rows, bytes);
            if (pruned > 0 && scheme.Method is PtqMethod.Int8 or PtqMethod.Int4) Assert.EndsWith(":sparse", kind);
            for (int i = 0; i < test.Count; i++)
            {
                var x = test.Features.AsSpan(i * 64, 64);
                var a = compact.Predict(x);
                Assert.Equal(a, loaded.Predict(x));
                for (int c = 0; c < 10; c++) Assert.Equal(expected[i * 10 + c], a[c], 1e-4f * (1 + Math.Abs(expected[i * 10 + c])));
            }
        }
    }

    private static float[] F16Apply(PtqScheme scheme, float[] w, int rowLength)
    {
        var (codes, scales) = scheme.Quantize(w, rowLength);
        int groups = scheme.GroupsPerRow(rowLength);
        return codes.Select((q, i) => (float)(Half)scales[scheme.ScaleIndex(i / rowLength, i % rowLength, groups)] * q).ToArray();
    }

    [Fact]
    public void Quantized_layers_in_a_damaged_file_are_refused()
    {
        var model = new Mlp(64, [48], 10, new Rng(5));
        using var dir = new TempDir();
        string path = dir.File("q.safetensors"), bad = dir.File("bad.safetensors");
        CompactClassifier.Compile(model, schemes: [PtqScheme.Parse("ternary/g32"), null]).Save(path);
        var file = Safetensors.Read(path);
        var stored = file.ToTensors();
        void Damage(string name, float[] values, string expected)
        {
            var tensors = stored.Select(kv => (kv.Key, kv.Key == name ? Tensor.FromArray(values, values.Length) : kv.Value));
            TensorFile.Write(bad, tensors, file.Metadata, file.DTypes.Where(kv => kv.Value != "F32").ToDictionary(kv => kv.Key, kv => kv.Value));
            var e = Assert.Throws<ColdmindException>(() => CompactClassifier.Load(bad));
            Assert.Contains(expected, e.Message);
        }
        var codes = stored["layers.0.codes"].ToArray();
        Damage("layers.0.codes", codes[..^1], "codes");
        Damage("layers.0.codes", [.. codes[..^1], 250f], "not Ternary codes");
        Damage("layers.0.scales", stored["layers.0.scales"].ToArray()[..3], "scales for a 48×64");
        Assert.Throws<ColdmindException>(() => CompactClassifier.Compile(new Mlp(64, [48], 10, new Rng(5), ternary: true), schemes: [PtqScheme.Parse("int8/g32"), null]));
    }

    [Fact]
    public void Shrink_reports_every_stage_and_its_model_runs_in_predict()
    {
        using var dir = new TempDir();
        var output = dir.File("shrunk.safetensors");
        var (exit, stdout, err) = CliProcess.Run("shrink", "--epochs", "10", "--out", output, "--json");
        Assert.True(exit == 0, err);
        using var json = JsonDocument.Parse(stdout);
        var stages = json.RootElement.GetProperty("stages").EnumerateArray().ToArray();
        Assert.Equal(["teacher", "student", "ticket", "ticket int8", "ticket int4", "ternary"], stages.Select(s => s.GetProperty("name").GetString()));
        foreach (var key in new[] { "test_accuracy", "bytes", "nonzero_parameters", "bits_per_weight", "joules_per_inference" })
            Assert.All(stages, s => Assert.True(s.GetProperty(key).GetDouble() > 0, key));
        var teacher = stages[0];
        var final = stages[^1];
        Assert.True(final.GetProperty("bytes").GetInt64() * 10 < teacher.GetProperty("bytes").GetInt64(), "the final model is not 10× smaller");
        Assert.True(final.GetProperty("test_accuracy").GetDouble() > 0.85, $"{final.GetProperty("test_accuracy")}");
        (exit, stdout, err) = CliProcess.Run("predict", output, "--json");
        Assert.True(exit == 0, err);
        using var predicted = JsonDocument.Parse(stdout);
        Assert.Equal(final.GetProperty("test_accuracy").GetDouble(), predicted.RootElement.GetProperty("test_accuracy").GetDouble(), 5);
    }

    [Fact]
    public void A_cnn_teacher_distills_into_the_mlp_student()
    {
        using var dir = new TempDir();
        var (exit, stdout, err) = CliProcess.Run("shrink", "--teacher-cnn", "8", "--teacher", "32", "--epochs", "6", "--rounds", "1", "--out", dir.File("s.safetensors"), "--json");
        Assert.True(exit == 0, err);
        using var json = JsonDocument.Parse(stdout);
        var teacher = json.RootElement.GetProperty("stages")[0];
        Assert.Contains("CNN", teacher.GetProperty("description").GetString());
        Assert.True(teacher.GetProperty("test_accuracy").GetDouble() > 0.8);
        Assert.True(teacher.GetProperty("latency_us").GetDouble() > 0);
        (exit, _, err) = CliProcess.Run("shrink", "--data", SharedFiles.Require("data/digits/digits.csv.gz"), "--teacher-cnn", "8", "--out", dir.File("x.safetensors"));
        Assert.Equal(1, exit);
        Assert.Contains("images", err);
    }

    [Fact]
    public void One_class_fewer_examples_than_classes_and_foreign_files_are_clear_errors_that_write_nothing()
    {
        using var dir = new TempDir();
        var oneClass = dir.File("one.csv");
        File.WriteAllLines(oneClass, ["a,b,label", .. Enumerable.Range(0, 50).Select(i => $"{i},{i * 2},x")]);
        var output = dir.File("out.safetensors");
        var (exit, _, err) = CliProcess.Run("shrink", "--data", oneClass, "--out", output);
        Assert.Equal(1, exit);
        Assert.Contains("class", err);
        Assert.False(File.Exists(output));
        var fewer = dir.File("few.csv"); // fewer examples than classes
        File.WriteAllLines(fewer, ["a,b,label", "1,2,w", "3,4,x", "5,6,y", "7,8,z"]);
        (exit, _, err) = CliProcess.Run("shrink", "--data", fewer, "--out", output);
        Assert.Equal(1, exit);
        Assert.Contains("4 examples for 4 classes", err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.False(File.Exists(output));
        (exit, _, err) = CliProcess.Run("predict", SharedFiles.Require("models/stories260K/stories260K.safetensors"));
        Assert.Equal(1, exit);
        Assert.Contains("not a compact classifier", err);
    }
}
