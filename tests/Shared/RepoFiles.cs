namespace Coldmind.Tests;

/// <summary>Files of this repository (networks/, devices/), found from the test binary upwards.</summary>
internal static class RepoFiles
{
    public static string Path(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Coldmind.slnx"))) return System.IO.Path.Combine(dir.FullName, relative);
        throw new FileNotFoundException($"The repository root (Coldmind.slnx) was not found above {AppContext.BaseDirectory}.");
    }
}
