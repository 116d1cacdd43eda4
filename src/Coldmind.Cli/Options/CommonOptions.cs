using System.CommandLine;
using Coldmind.Numerics;

namespace Coldmind.Cli.Options;

/// <summary>Options several commands share, parsed and validated in one place.</summary>
internal static class CommonOptions
{
    public static Option<string?> LabelColumn() => new("--label")
    {
        Description = "CSV only: the label column, by header name or index (negative counts from the end; default: last)",
    };

    public static Option<ulong> Seed() => new("--seed")
    {
        Description = "seed for initialisation, data split and shuffling (same seed and thread count → identical result)",
        DefaultValueFactory = _ => 0UL,
    };

    public static Option<int> Threads() => new("--threads")
    {
        Description = "worker threads for the kernels (default: all cores)",
        DefaultValueFactory = _ => Environment.ProcessorCount,
    };

    public static Option<bool> Json() => new("--json") { Description = "print one JSON object on stdout instead of tables" };

    public static void UseThreads(int threads)
    {
        if (threads < 1) throw new ColdmindException($"--threads must be at least 1, got {threads}.");
        if (WorkerPool.Shared.Threads != threads) WorkerPool.Shared = new WorkerPool(threads);
    }

    /// <summary>--hidden of a swarm model: sizes such as 64,32, or none (softmax regression).</summary>
    public static int[] ParseHidden(string text) =>
        text.Trim().Equals("none", StringComparison.OrdinalIgnoreCase) ? [] : ParseSizes(text, "--hidden");

    public static int[] ParseSizes(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var sizes = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], System.Globalization.CultureInfo.InvariantCulture, out sizes[i]) || sizes[i] < 1)
                throw new ColdmindException($"{option} expects positive whole numbers separated by commas, e.g. 300,100; got '{text}'.");
        return sizes;
    }

    /// <summary>A set of classes as a list of numbers and ranges, such as 0-4 or 0,2,4.</summary>
    public static HashSet<int> ParseClasses(string text, int classes, string option)
    {
        var set = new HashSet<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var ends = part.Split('-');
            if (ends.Length is < 1 or > 2 || !int.TryParse(ends[0], System.Globalization.CultureInfo.InvariantCulture, out int a)
                || !int.TryParse(ends[^1], System.Globalization.CultureInfo.InvariantCulture, out int b) || a > b || a < 0 || b >= classes)
                throw new ColdmindException($"{option} takes classes in 0..{classes - 1} as a list of numbers and ranges (e.g. 0-4), got '{text}'.");
            for (int c = a; c <= b; c++) set.Add(c);
        }
        if (set.Count == 0) throw new ColdmindException($"{option} names no class.");
        return set;
    }
}
