using Xunit;
using System.Diagnostics;

namespace Coldmind.Export.Tests;

/// <summary>
/// Category=Qemu: the export built by arm-none-eabi-gcc (newlib, our startup and linker script) and run under
/// qemu-system-arm on a Cortex-M7 with FPU (mps2-an500) and a Cortex-M3 without (mps2-an385), the whole digits
/// test split streamed through semihosting: every result equals the host's and Coldmind's.
/// </summary>
[Collection("export models")]
[Trait("Category", "Qemu")]
public sealed class QemuTests(ExportModels models) : IDisposable
{
    private readonly string _out = Path.Combine(Path.GetTempPath(), $"coldmind-export-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_out)) Directory.Delete(_out, true);
    }

    [Theory]
    [InlineData(Fpu.Single)]
    [InlineData(Fpu.None)]
    public void ShrunkModelOnBothCoresEqualsTheHostOnTheWholeTestSplit(Fpu fpu)
    {
        var deployment = CDeployment.Load(models.Path("ternary"), fpu, models.Digits);
        deployment.Exporter.Write(_out);
        bool integer = fpu == Fpu.None;
        var inputs = deployment.Inputs();
        int n = deployment.Test.FeatureCount;
        var host = CVerifier.Host(_out, inputs, n, integer);
        foreach (var core in new[] { ArmCore.M7, ArmCore.M3 })
        {
            var run = CVerifier.Qemu(_out, core, inputs, n, integer);
            Assert.Equal(host.Scores, run.Scores);
            var check = deployment.Check(run);
            Assert.Equal(check.Examples, integer ? check.ExactScores : check.EqualPredictions);
            var exporter = deployment.Exporter;
            Assert.InRange(run.FlashBytes!.Value, exporter.WeightBytes, exporter.WeightBytes + 8192);
            Assert.InRange(run.StaticRamBytes!.Value, exporter.ArenaBytes, exporter.ArenaBytes + 64);
            Assert.InRange(run.StackBytes!.Value, 1, 4096);
            Assert.True(run.InstructionsPerInference > 1000, $"{run.InstructionsPerInference} instructions");
        }
    }

    /// <summary>The ternary rows' kernels, compiled for a Cortex-M3: no multiply instruction in them.</summary>
    [Fact]
    public void TernaryKernelsCompileWithoutMultiplications()
    {
        var exporter = CDeployment.Load(models.Path("ternary"), Fpu.Single, models.Digits).Exporter;
        exporter.Write(_out);
        string asm = Path.Combine(_out, "model.s");
        string[] arguments = ["-mthumb", "-mcpu=cortex-m3", "-O2", "-fno-inline", "-S", "-o", asm,
            Path.Combine(_out, "model.c")];
        var info = new ProcessStartInfo("arm-none-eabi-gcc", arguments) { RedirectStandardError = true };
        using (var gcc = Process.Start(info)!)
        {
            gcc.WaitForExit();
            Assert.True(gcc.ExitCode == 0, gcc.StandardError.ReadToEnd());
        }
        var lines = File.ReadAllLines(asm);
        // a label per kernel, possibly a specialised clone (cm_trits_dense.constprop.0:)
        var kernels = lines.Where(l => l.StartsWith("cm_trits_", StringComparison.Ordinal) && l.EndsWith(':'))
            .ToArray();
        Assert.NotEmpty(kernels);
        foreach (var kernel in kernels)
        {
            var body = lines.SkipWhile(l => l != kernel)
                .TakeWhile(l => !l.StartsWith("\t.size", StringComparison.Ordinal)).ToArray();
            Assert.True(body.Length > 5, $"{kernel} has no body in the assembly");
            Assert.DoesNotContain(body, l => l.TrimStart().StartsWith("mul", StringComparison.Ordinal)
                || l.Contains("\tmla", StringComparison.Ordinal) || l.Contains("mull", StringComparison.Ordinal));
        }
    }
}
