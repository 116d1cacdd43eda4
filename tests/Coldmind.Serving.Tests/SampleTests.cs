using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Xunit;

namespace Coldmind.Serving.Tests;

/// <summary>The programs in samples/, built with the solution, run as their comments tell a user to.</summary>
public class SampleTests(Models models) : IClassFixture<Models>
{
    private static string Sample(string name)
    {
        char slash = Path.DirectorySeparatorChar;
        string configuration = AppContext.BaseDirectory.Contains($"{slash}Debug{slash}", StringComparison.Ordinal)
            ? "Debug" : "Release";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var dll = Path.Combine(dir.FullName, "samples", name, "bin", configuration, "net10.0", name + ".dll");
            if (File.Exists(dll)) return dll;
        }
        throw new FileNotFoundException($"samples/{name} is not built.");
    }

    private static Process Start(string name, string? input, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet", [Sample(name), .. args]) { RedirectStandardOutput = true,
            RedirectStandardError = true, RedirectStandardInput = true };
        var p = Process.Start(psi)!;
        if (input != null) p.StandardInput.Write(input);
        p.StandardInput.Close();
        return p;
    }

    private static (int Exit, string Out, string Err) Finish(Process p)
    {
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        using (p) return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void The_chat_sample_answers_each_line_through_the_chat_client()
    {
        var (exit, stdout, err) = Finish(Start("ChatWithGguf", "Hi\nAnd then?\n", models.Stories));
        Assert.True(exit == 0, err);
        Assert.True(stdout.Count(c => c == '\n') >= 2 && stdout.Trim().Length > 0, stdout); // one answer a line typed
        (exit, _, err) = Finish(Start("ChatWithGguf", "", "missing.gguf"));
        Assert.Equal(1, exit);
        Assert.Contains("missing.gguf", err);
    }

    [Fact]
    public void The_sensor_sample_classifies_a_stream_of_readings_with_their_joules()
    {
        using var dir = new TempDir();
        var model = dir.File("shrunk.safetensors");
        var (exit, _, err) = Cli.Run("shrink", "--epochs", "2", "--rounds", "1", "--teacher", "32", "--student", "16",
            "--device", "stm32h7",
            "--threads", "1", "--out", model, "--json");
        Assert.True(exit == 0, err);
        (exit, var stdout, err) = Finish(Start("SensorClassifier", null, model, "stm32h7"));
        Assert.True(exit == 0, err);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(20, lines.Length);
        Assert.All(lines, l => Assert.Matches(@"^\d+: class \d \(p = [01]\.\d{3}\), \d\.\d\dE-\d{3} J so far$", l));
        Assert.Contains(" J and ", err);
        (exit, _, err) = Finish(Start("SensorClassifier", "1,2,3\n", model, "stm32h7", "-"));
        Assert.Equal(1, exit);
        Assert.Contains("line 1: expected 64 numbers", err);
    }

    [Fact]
    public void Two_swarm_sample_devices_find_each_other_and_learn()
    {
        int Free()
        {
            using var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            return ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        using var dir = new TempDir();
        var key = dir.File("key");
        File.WriteAllText(key, Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
        string a = $"127.0.0.1:{Free()}", b = $"127.0.0.1:{Free()}";
        var first = Start("SwarmDevice", null, a, b, key, "0/2", "4");
        var second = Start("SwarmDevice", null, b, a, key, "1/2", "4");
        foreach (var (exit, stdout, err) in new[] { Finish(first), Finish(second) })
        {
            Assert.True(exit == 0, err);
            var m = System.Text.RegularExpressions.Regex.Match(stdout,
                @"test accuracy ([\d.]+) % after 4 cycles; received (\d+)");
            Assert.True(m.Success, stdout);
            Assert.True(int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture) > 0,
                stdout); // it heard its peer
            Assert.True(double.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) > 20,
                stdout); // above chance (10 %)
        }
    }
}
