namespace Coldmind.Tests;

/// <summary>Files from ../shared beside the checkout; a missing one fails the test with a loud message.</summary>
internal static class SharedFiles
{
    public static string Require(string relative)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", relative);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException($"SHARED DATA MISSING: '{relative}' was not found in a 'shared' folder beside the checkout (../shared). This test needs it; it does not pass silently.");
    }
}
