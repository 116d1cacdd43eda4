using Coldmind.Data;
using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;

namespace Coldmind.Export;

/// <summary>One build checked against Coldmind: how many predictions equal, and how far the scores are.</summary>
/// <param name="ExactScores">results whose scores equal the C# reference of the exported program bit for bit</param>
/// <param name="MaxScoreError">
/// largest |C − Coldmind| of a score (float program), relative to the example's largest score
/// </param>
/// <param name="SameAsHost">
/// results equal to the host build's (scores for the integer program, else predictions)
/// </param>
public sealed record CCheck(CRun Run, int Examples, int EqualPredictions, int ExactScores, double MaxScoreError,
    int SameAsHost = 0)
{
    /// <summary>
    /// The float program must predict as Coldmind does; the integer one must be its reference bit for bit (int8
    /// activations may move a near tie, so its agreement with the float model is reported, not required). Every
    /// build must agree with the host's.
    /// </summary>
    public bool Passed(bool integer) =>
        (integer ? ExactScores : EqualPredictions) == Examples && SameAsHost == Examples;
}

/// <summary>What `--verify` found: each build checked, and the host's callgrind instruction count (qemu).</summary>
public sealed record CVerification(IReadOnlyList<CCheck> Checks, double? HostInstructions);

/// <summary>
/// `coldmind export --target c`: loads a classifier, writes it as C (<see cref="CExporter"/>), and checks it: every
/// prediction of the C build against Coldmind's own <see cref="ClassifierModel.Logits(ReadOnlySpan{float})"/>, and
/// the scores against <see cref="CReference"/> (bit for bit for the integer program).
/// </summary>
public sealed class CDeployment
{
    public ExportGraph Graph { get; }
    public CExporter Exporter { get; }
    public ClassifierModel Model { get; }
    public Dataset Test { get; }
    public bool Integer => Exporter.Plan != null;

    private CDeployment(ExportGraph graph, CExporter exporter, ClassifierModel model, Dataset test) =>
        (Graph, Exporter, Model, Test) = (graph, exporter, model, test);

    /// <summary>
    /// The model at <paramref name="path"/> and its data's splits (calibration from the training split, checks on
    /// the test split).
    /// </summary>
    public static CDeployment Load(string path, Fpu fpu, DataSplits splits)
    {
        var graph = ExportGraph.Load(path);
        var model = ClassifierModel.Load(path);
        var (train, test) = (splits.Train, splits.Test);
        if (test.FeatureCount != graph.Inputs || test.Classes != graph.Classes)
            throw new ColdmindException($"'{path}' takes {graph.Inputs} features and {graph.Classes} classes; "
                + $"'{test.Name}' has {test.FeatureCount} and {test.Classes}.");
        int calibration = Math.Min(train.Count, 2000);
        var options = new CExportOptions(fpu, train.Features.AsSpan(0, calibration * train.FeatureCount).ToArray(),
            test.Count > 0 ? (test.Features.AsSpan(0, test.FeatureCount).ToArray(), test.Labels[0]) : null);
        return new CDeployment(graph, new CExporter(graph, options), model, test);
    }

    /// <summary>The first <paramref name="count"/> test inputs (all when null), examples × inputs.</summary>
    public float[] Inputs(int? count = null) =>
        Test.Features.AsSpan(0, Math.Min(count ?? Test.Count, Test.Count) * Test.FeatureCount).ToArray();

    /// <summary>
    /// Builds the export in <paramref name="exportDir"/> with gcc and clang (strict flags), runs the first
    /// <paramref name="examples"/> test examples on the host and, when <paramref name="qemu"/>, on both emulated
    /// cores (and counts the host's instructions), and checks every build.
    /// </summary>
    public CVerification Verify(string exportDir, bool qemu, int? examples, Action<string> progress)
    {
        foreach (var compiler in new[] { "cc", "clang" })
        {
            progress($"compiling with {compiler} {CVerifier.StrictFlags}");
            CVerifier.CheckWarnings(exportDir, compiler, Integer);
        }
        var inputs = Inputs(examples);
        int n = Test.FeatureCount;
        progress($"running {inputs.Length / n} examples of {Test.Name} on the host");
        var runs = new List<CRun> { CVerifier.Host(exportDir, inputs, n, Integer) };
        double? callgrind = null;
        if (qemu)
        {
            progress("counting the host's instructions with valgrind --tool=callgrind");
            callgrind = CVerifier.Callgrind(exportDir, inputs, n, Integer);
            foreach (var core in new[] { ArmCore.M7, ArmCore.M3 })
            {
                progress($"running them on {core.Name} ({core.Machine}) under qemu-system-arm");
                runs.Add(CVerifier.Qemu(exportDir, core, inputs, n, Integer));
            }
        }
        var checks = runs.Select(run => Check(run) with
        {
            SameAsHost = Enumerable.Range(0, run.Count).Count(e => Integer
                ? run.Scores[e].SequenceEqual(runs[0].Scores[e]) : run.ArgMax(e, false) == runs[0].ArgMax(e, false)),
        }).ToArray();
        return new CVerification(checks, callgrind);
    }

    /// <summary>
    /// Compares a build's results with Coldmind's predictions and with the reference of the exported program.
    /// </summary>
    public CCheck Check(CRun run)
    {
        int n = Test.FeatureCount, equal = 0, exact = 0;
        double maxError = 0;
        for (int e = 0; e < run.Count; e++)
        {
            var x = Test.Features.AsSpan(e * n, n);
            var coldmind = Model.Logits(x);
            if (run.ArgMax(e, Integer) == TensorPrimitives.IndexOfMax(coldmind)) equal++;
            uint[] expected;
            if (Integer)
            {
                var q = new sbyte[n];
                for (int i = 0; i < n; i++) q[i] = Exporter.Plan!.QuantizeInput(x[i]);
                expected = CReference.Integer(Exporter.Plan!, q).Select(v => (uint)v).ToArray();
            }
            else
            {
                expected = CReference.Float(Exporter.Layers, x).Select(BitConverter.SingleToUInt32Bits).ToArray();
                float top = coldmind.Max(Math.Abs);
                for (int c = 0; c < coldmind.Length; c++)
                {
                    float c99 = BitConverter.UInt32BitsToSingle(run.Scores[e][c]);
                    maxError = Math.Max(maxError, Math.Abs(c99 - coldmind[c]) / Math.Max(top, 1e-30f));
                }
            }
            if (expected.SequenceEqual(run.Scores[e])) exact++;
        }
        return new CCheck(run, run.Count, equal, exact, maxError);
    }
}
