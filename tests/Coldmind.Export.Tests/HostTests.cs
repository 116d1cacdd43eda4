using Xunit;
namespace Coldmind.Export.Tests;

/// <summary>
/// Each kind of classifier exported, compiled warning-free by gcc and clang (-std=c99 -Wall -Wextra -Werror
/// -pedantic), and run by the host on the whole test split: the float program predicts as Coldmind's own runtime
/// on every example, the integer program gives its reference's scores bit for bit.
/// </summary>
[Collection("export models")]
public sealed class HostTests(ExportModels models) : IDisposable
{
    private readonly string _out = Path.Combine(Path.GetTempPath(), $"coldmind-export-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_out)) Directory.Delete(_out, true);
    }

    private CCheck ExportAndRun(string path, Fpu fpu, Data.DataSplits splits)
    {
        var deployment = CDeployment.Load(path, fpu, splits);
        deployment.Exporter.Write(_out);
        bool integer = fpu == Fpu.None;
        CVerifier.CheckWarnings(_out, "gcc", integer);
        CVerifier.CheckWarnings(_out, "clang", integer);
        return deployment.Check(CVerifier.Host(_out, deployment.Inputs(), deployment.Test.FeatureCount, integer));
    }

    [Theory]
    [InlineData("teacher")] // float dense
    [InlineData("ticket")] // float CSR
    [InlineData("ticket-int8")] // int8 codes, a scale per 32, CSR
    [InlineData("ticket-int4")] // int4 codes
    [InlineData("ternary")] // BitNet layer (trits) and float head: what `shrink` writes
    [InlineData("cnn")] // SmallCnn from the training engine
    [InlineData("bitnet")] // a ternary MLP checkpoint from the training engine
    [InlineData("ptq-int2-binary")] // 2-bit and 1-bit codes
    [InlineData("ptq-ternary-int4")] // codes in {−1, 0, 1} with one scale, int4 with one scale
    public void FloatProgramPredictsAsColdmindOnTheWholeTestSplit(string model)
    {
        var check = ExportAndRun(models.Path(model), Fpu.Single, models.Digits);
        Assert.Equal(models.Digits.Test.Count, check.Examples);
        Assert.Equal(check.Examples, check.EqualPredictions);
        Assert.True(check.MaxScoreError < 1e-5, $"largest score error {check.MaxScoreError} of the top score");
        // written in the reference's order, the float program is even bit-exact on an IEEE host without FMA
        Assert.Equal(check.Examples, check.ExactScores);
    }

    [Theory]
    [InlineData("teacher")]
    [InlineData("ticket")]
    [InlineData("ticket-int8")]
    [InlineData("ticket-int4")]
    [InlineData("ternary")]
    [InlineData("bitnet")]
    [InlineData("ptq-int2-binary")]
    [InlineData("ptq-ternary-int4")]
    public void IntegerProgramIsBitExactAndAgreesWithColdmind(string model)
    {
        var check = ExportAndRun(models.Path(model), Fpu.None, models.Digits);
        Assert.Equal(check.Examples, check.ExactScores);
        // int8 activations may move a near tie; the integer program must still make the float model's decisions
        Assert.True(check.EqualPredictions >= 0.98 * check.Examples,
            $"{check.EqualPredictions}/{check.Examples} predictions equal");
    }

    [Fact]
    public void FashionMnistTernaryOnItsWholeTestSplitInBothPrograms()
    {
        var single = ExportAndRun(models.FashionTernary, Fpu.Single, models.Fashion);
        Assert.Equal(10_000, single.Examples);
        Assert.Equal(single.Examples, single.EqualPredictions);
        var none = ExportAndRun(models.FashionTernary, Fpu.None, models.Fashion);
        Assert.Equal(none.Examples, none.ExactScores);
        Assert.True(none.EqualPredictions >= 0.98 * none.Examples,
            $"{none.EqualPredictions}/{none.Examples} predictions equal");
    }

    [Fact]
    public void ExampleProgramPrintsTheLabelledExamplesClass()
    {
        var deployment = CDeployment.Load(models.Path("ternary"), Fpu.Single, models.Digits);
        deployment.Exporter.Write(_out);
        var c = deployment.Exporter.Generate()["example.c"];
        Assert.Contains($"(label {models.Digits.Test.Labels[0]})", c, StringComparison.Ordinal);
        CVerifier.CheckWarnings(_out, "gcc", integer: false);
    }

    [Fact]
    public void CallgrindCountsInstructionsOfOneInference()
    {
        var deployment = CDeployment.Load(models.Path("ternary"), Fpu.None, models.Digits);
        deployment.Exporter.Write(_out);
        int n = deployment.Test.FeatureCount;
        double instructions = CVerifier.Callgrind(_out, deployment.Inputs(20), n, integer: true, examples: 20);
        // 64 inputs × 128 rows: at least an instruction a kept trit, far fewer than a dense float pass would take
        Assert.InRange(instructions, 64 * 128 / 4, 200_000);
    }
}
