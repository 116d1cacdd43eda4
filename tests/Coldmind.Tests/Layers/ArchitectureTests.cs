using Xunit;

namespace Coldmind.Tests.Layers;

/// <summary>
/// The layers of docs/architecture.md, checked on the compiled assemblies: a room may use the rooms of lower
/// layers, never a higher one, and never a sibling of its own layer.
/// </summary>
public class ArchitectureTests
{
    /// <summary>Bottom to top. A namespace belongs to the room that is its longest listed prefix.</summary>
    public static readonly string[][] Layers =
    [
        ["Coldmind"],
        ["Coldmind.Numerics"],
        ["Coldmind.Quantization"],
        ["Coldmind.Formats"],
        ["Coldmind.Kernels"],
        ["Coldmind.Tensors"],
        ["Coldmind.Data"],
        ["Coldmind.Nn"],
        ["Coldmind.Models", "Coldmind.Reports", "Coldmind.Network"],
        ["Coldmind.Runtime.Lm", "Coldmind.Runtime.Classifier", "Coldmind.LmTraining"],
        ["Coldmind.Cost"],
        ["Coldmind.Shrink", "Coldmind.Export"],
        ["Coldmind.Cognition", "Coldmind.Merging", "Coldmind.Swarm", "Coldmind.Serving"],
        ["Coldmind.Cli"],
    ];

    [Fact]
    public void NoRoomUsesAHigherOrSiblingRoom()
    {
        var violations = Violations(typeof(Coldmind.ColdmindException).Assembly.Location)
            .Concat(Violations(Path.Combine(AppContext.BaseDirectory, "Coldmind.Cli.dll"))).ToList();
        Assert.True(violations.Count == 0, "Upward or sideways references:\n" + string.Join("\n", violations));
    }

    [Fact]
    public void EveryNamespaceHasARoom()
    {
        var unplaced = LayerReferences.Read(typeof(Coldmind.ColdmindException).Assembly.Location)
            .SelectMany(e => new[] { e.From, e.To }).Distinct().Where(n => n.StartsWith("Coldmind", StringComparison.Ordinal) && Room(n) == null).ToList();
        Assert.True(unplaced.Count == 0, "Namespaces in no layer: " + string.Join(", ", unplaced));
    }

    /// <summary>The check catches a planted violation: this test assembly's <see cref="Planted"/> type claims the
    /// Kernels room and calls into Shrink (both planted in the test assembly).</summary>
    [Fact]
    public void APlantedUpwardReferenceIsCaught()
    {
        var violations = Violations(typeof(ArchitectureTests).Assembly.Location);
        Assert.Contains(violations, v => v.StartsWith("Coldmind.Kernels.Planted → Coldmind.Shrink.Planted (upward", StringComparison.Ordinal));
        Assert.Equal(1, Kernels.Planted.Kernel.Run() / 3);
    }

    public static List<string> Violations(string assembly)
    {
        var found = new List<string>();
        foreach (var (from, to, example) in LayerReferences.Read(assembly))
        {
            var (a, b) = (Room(from), Room(to));
            if (a == null || b == null || a == b) continue;
            int la = LayerOf(a), lb = LayerOf(b);
            if (lb >= la) found.Add($"{from} → {to} ({(lb == la ? "sibling" : "upward")}: {example})");
        }
        return found;
    }

    private static string? Room(string ns) =>
        Layers.SelectMany(l => l).Where(r => ns == r || ns.StartsWith(r + ".", StringComparison.Ordinal)).MaxBy(r => r.Length);

    private static int LayerOf(string room) => Array.FindIndex(Layers, l => l.Contains(room));
}
