using System.Globalization;
using Coldmind.Data;
using Coldmind.Export.Onnx;
using Coldmind.Models.Onnx;
using Coldmind.Formats.Onnx;
using Coldmind.Nn;
using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;
using Xunit;

namespace Coldmind.Onnx.Tests;

/// <summary>CSV data: per-feature standardisation in the graph (Sub, Div) and its inverse in front of an
/// import.</summary>
public class CsvScalingTests
{
    /// <summary>Digits as a CSV table whose columns have different offsets and spreads (and one constant column), label
    /// last.</summary>
    private static string WriteCsv(TempDir dir)
    {
        var digits = BuiltinData.Digits();
        var lines = new List<string> { string.Join(",", Enumerable.Range(0, 64).Select(j => $"f{j}").Append("label")) };
        for (int i = 0; i < digits.Count; i++)
            lines.Add(
                string.Join(
                    ",",
                    Enumerable
                        .Range(0, 64)
                        .Select(j =>
                            (digits.Features[i * 64 + j] * 16 * (j % 5 + 1) + 10 * j).ToString(
                                "R",
                                CultureInfo.InvariantCulture
                            )
                        )
                        .Append(digits.Labels[i].ToString(CultureInfo.InvariantCulture))
                )
            );
        string path = dir.File("table.csv");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void Input_scaling_of_a_csv_is_the_standardisation_the_loader_applies()
    {
        using var dir = new TempDir();
        string csv = WriteCsv(dir);
        var scaled = BuiltinData.Load(csv, seed: 3).Test;
        var raw = DataSplits.Stratified(BuiltinData.FromCsv(csv), 0.1, 0.2, 3).Test;
        var (offset, divisor) = InputScaling.For(csv, 3).Expand(64);
        for (int i = 0; i < raw.Features.Length; i++)
            Assert.Equal(scaled.Features[i], (raw.Features[i] - offset[i % 64]) / divisor[i % 64]);
    }

    [Fact]
    public void A_csv_model_exports_its_standardisation_and_onnx_runtime_takes_raw_columns()
    {
        using var dir = new TempDir();
        string csv = WriteCsv(dir);
        var data = BuiltinData.Load(csv, seed: 3);
        var spec = ClassifierSpec.ForMlp([64], 10, [32]);
        var model = Trained.Fit(spec, data, epochs: 3);
        var meta = Trained.Metadata(spec, csv);
        meta["coldmind.seed"] = "3";
        var onnx = OnnxExporter.Export(model, spec, meta);
        Assert.Equal(["Sub", "Div"], onnx.Graph.Nodes.Take(2).Select(n => n.OpType));
        var raw = DataSplits.Stratified(BuiltinData.FromCsv(csv), 0.1, 0.2, 3).Test;
        var coldmind = ClassifierModel.Of(model, spec, "csv", meta).Logits(data.Test);
        OrtPeer.AssertAgree(
            coldmind,
            OrtPeer.Run(OnnxFile.ToBytes(onnx), raw.Features, [64], raw.Count),
            10,
            1e-4f,
            1e-3f,
            "csv mlp"
        );

        // back in: the inverse standardisation in front cancels the graph's (within 1e-6) and the logits are the same
        string path = dir.File("csv.onnx");
        OnnxFile.Write(path, onnx);
        var imported = OnnxImporter.Import(path);
        Assert.Equal(csv, imported.Metadata["coldmind.data"]);
        var again = ClassifierModel.Of(imported.Build(), imported.Spec, "again", imported.Metadata).Logits(data.Test);
        OrtPeer.AssertAgree(coldmind, again, 10, 1e-4f, 1e-3f, "csv round trip");
    }
}
