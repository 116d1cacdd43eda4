using System.Diagnostics;
using System.Text.Json;
using Xunit;

namespace Coldmind.Serving.Tests;

public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("coldmind-serving-").FullName;
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose() => Directory.Delete(Path, recursive: true);
}

/// <summary>The serving tests' models: stories260K from ../shared and a small one `train-lm` writes.</summary>
public sealed class Models : IDisposable
{
    private readonly TempDir _dir = new();

    public string Stories { get; } = Shared("models/stories260K/stories260K.f32.gguf");
    public string TrainLm { get; }

    public Models()
    {
        var text = _dir.File("text.txt");
        File.WriteAllText(text, File.ReadAllText(Shared("data/text/tinyshakespeare.txt"))[..40_000]);
        TrainLm = _dir.File("tiny.gguf");
        var (exit, _, err) = Cli.Run("train-lm", "--text", text, "--out", TrainLm, "--steps", "30", "--layers", "1",
            "--ffn", "256",
            "--batch", "4", "--context", "32", "--no-baseline", "--json");
        Assert.True(exit == 0, err);
    }

    public string this[string name] => name == "stories260K" ? Stories : TrainLm;

    public static string Shared(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = System.IO.Path.Combine(dir.FullName, "shared", relative);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException(
            $"SHARED DATA MISSING: '{relative}' was not found in a 'shared' folder beside the checkout (../shared).");
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>The `coldmind` command as a separate process.</summary>
internal static class Cli
{
    public static string Dll => System.IO.Path.Combine(AppContext.BaseDirectory, "Coldmind.Cli.dll");

    public static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet", [Dll, .. args]) { RedirectStandardOutput = true,
            RedirectStandardError = true };
        psi.Environment["NO_COLOR"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>`coldmind run MODEL -p PROMPT -n N --temp 0 --json`: its text and prompt token count.</summary>
    public static (string Text, int PromptTokens, int Tokens) RunGreedy(string model, string prompt, int n,
        float repeatPenalty = 1f)
    {
        var (exit, stdout, err) = Run("run", model, "-p", prompt, "-n",
            n.ToString(System.Globalization.CultureInfo.InvariantCulture), "--temp", "0",
            "--repeat-penalty", repeatPenalty.ToString(System.Globalization.CultureInfo.InvariantCulture), "--json");
        Assert.True(exit == 0, err);
        using var json = JsonDocument.Parse(stdout);
        var root = json.RootElement;
        return (root.GetProperty("text").GetString()!, root.GetProperty("prompt_tokens").GetInt32(),
            root.GetProperty("tokens").GetArrayLength());
    }
}

/// <summary>`coldmind serve MODEL.gguf --listen 127.0.0.1:0 …` in its own process, as a user starts it.</summary>
public sealed class ServerProcess : IDisposable
{
    private readonly Process _process;
    private readonly Task<string> _stderr;
    public Uri Address { get; }
    public int Id => _process.Id;

    public ServerProcess(string model, params string[] options)
    {
        var psi = new ProcessStartInfo("dotnet", [Cli.Dll, "serve", model, "--listen", "127.0.0.1:0", .. options])
            { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["NO_COLOR"] = "1";
        _process = Process.Start(psi)!;
        _stderr = _process.StandardError.ReadToEndAsync();
        string? line = _process.StandardOutput.ReadLine();
        if (line == null || !line.Contains(" on http", StringComparison.Ordinal))
        {
            _process.WaitForExit();
            throw new InvalidOperationException($"serve did not start: {line} {_stderr.Result}");
        }
        int at = line.IndexOf("http", StringComparison.Ordinal);
        Address = new Uri(line[at..line.IndexOf(' ', at)]);
    }

    /// <summary>The most resident memory the server process has held (VmHWM), in bytes.</summary>
    public long PeakResidentBytes()
    {
        var line = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith("VmHWM:",
            StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1],
            System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill();
        _process.WaitForExit();
        _process.Dispose();
    }
}
