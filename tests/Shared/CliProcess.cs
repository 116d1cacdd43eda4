using System.Diagnostics;

namespace Coldmind.Tests;

/// <summary>The `coldmind` command as a user runs it: a separate process, its exit code, stdout and stderr.</summary>
internal static class CliProcess
{
    internal static (int Exit, string Out, string Err) Run(params string[] args) => RunWithInput(null, args);

    /// <summary>Runs the command with <paramref name="input"/> typed on its standard input (then end of input).</summary>
    internal static (int Exit, string Out, string Err) RunWithInput(string? input, params string[] args)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "Coldmind.Cli.dll");
        var psi = new ProcessStartInfo("dotnet", [dll, .. args]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = input != null };
        psi.Environment["NO_COLOR"] = "1";
        using var p = Process.Start(psi)!;
        if (input != null)
        {
            p.StandardInput.Write(input);
            p.StandardInput.Close();
        }
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
