using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit;

namespace Coldmind.Serving.Tests;

/// <summary>
/// The packages as a user gets them: the library and the tool packed into a folder, the tool installed from it and
/// run, and the README's library example built and run against the packed library. Restores use only that folder
/// and the machine's NuGet source (through the local package cache, never the repository's projects).
/// </summary>
public partial class PackageTests
{
    private static string Root()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Coldmind.slnx"))) return dir.FullName;
        throw new InvalidOperationException("Coldmind.slnx not found above the test's folder.");
    }

    private static (int Exit, string Out, string Err) Run(string file, string directory, params string[] args)
    {
        var psi = new ProcessStartInfo(file, args) { WorkingDirectory = directory, RedirectStandardOutput = true,
            RedirectStandardError = true };
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [GeneratedRegex("<!-- library-example -->\\s*```csharp\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex LibraryExample();

    [Fact]
    public void The_packed_tool_installs_and_runs_and_the_readme_example_builds_against_the_packed_library()
    {
        string root = Root();
        using var dir = new TempDir();
        string feed = dir.File("feed"), tools = dir.File("tools"), app = dir.File("app");
        // --no-build: the test run has just built these projects in Release
        foreach (var project in new[] { "src/Coldmind", "src/Coldmind.Cli" })
        {
            var (exit, stdout, err) = Run("dotnet", root, "pack", project, "-c", "Release", "--no-build", "-o", feed);
            Assert.True(exit == 0, stdout + err);
        }
        var version = typeof(ColdmindChatClient).Assembly.GetName().Version!;
        string v = $"{version.Major}.{version.Minor}.{version.Build}";
        Assert.True(File.Exists(Path.Combine(feed, $"Coldmind.{v}.nupkg")));

        var (code, output, error) = Run("dotnet", dir.Path, "tool", "install", "Coldmind.Cli", "--tool-path", tools,
            "--add-source", feed, "--version", v);
        Assert.True(code == 0, output + error);
        string coldmind = Path.Combine(tools, "coldmind");
        (code, output, error) = Run(coldmind, dir.Path, "--version");
        Assert.True(code == 0, error);
        Assert.StartsWith(v, output.Trim(), StringComparison.Ordinal);
        (code, output, error) = Run(coldmind, dir.Path, "shrink", "--epochs", "2", "--rounds", "1", "--teacher", "32",
            "--student", "16",
            "--threads", "1", "--device", "stm32h7", "--out", dir.File("s.safetensors"), "--json");
        Assert.True(code == 0, error);
        using (var json = JsonDocument.Parse(output))
            Assert.True(json.RootElement.GetProperty("stages").GetArrayLength() >= 4);
        Assert.True(File.Exists(dir.File("s.safetensors")));

        Directory.CreateDirectory(app);
        string packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        // its own package folder, so a Coldmind package cached by an earlier run is never used instead of this one;
        // the machine's cache as a fallback for the dependencies
        File.WriteAllText(Path.Combine(app, "app.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <RestorePackagesPath>{dir.File("packages")}</RestorePackagesPath>
                <RestoreAdditionalProjectFallbackFolders>{packages}</RestoreAdditionalProjectFallbackFolders>
              </PropertyGroup>
              <ItemGroup><PackageReference Include="Coldmind" Version="{v}" /></ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(app, "nuget.config"), $"""
            <configuration><packageSources><add key="coldmind" value="{feed}" /></packageSources></configuration>
            """);
        var example = LibraryExample().Match(File.ReadAllText(Path.Combine(root, "README.md")));
        Assert.True(example.Success, "README.md has no library example");
        File.WriteAllText(Path.Combine(app, "Program.cs"), example.Groups[1].Value);
        (code, output, error) = Run("dotnet", app, "run", "-c", "Release");
        Assert.True(code == 0, output + error);
        Assert.Contains("ternary: ", output, StringComparison.Ordinal);
        Assert.Contains("on an STM32H7: ", output, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(app, "digits.safetensors")));
    }
}
