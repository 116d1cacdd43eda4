using System.Globalization;

namespace Coldmind.Cost;

/// <summary>
/// Linux powercap (Intel RAPL, and AMD's through the same interface) package energy counters, when readable:
/// joules consumed by the CPU packages between two reads, wrap-around handled. Absent in most VMs and
/// unreadable without root on recent kernels; then <see cref="Open"/> returns null and joules are estimates.
/// </summary>
public sealed class EnergyCounter
{
    private const string Root = "/sys/class/powercap";
    private readonly (string Path, double Range)[] _zones;

    private EnergyCounter((string, double)[] zones) => _zones = zones;

    public static EnergyCounter? Open()
    {
        if (!Directory.Exists(Root)) return null;
        var zones = new List<(string, double)>();
        // top-level zones only (intel-rapl:0, not the intel-rapl:0:0 sub-zones, which the package already counts)
        foreach (var dir in Directory.GetDirectories(Root).Where(d => Path.GetFileName(d).Count(ch => ch == ':') == 1))
        {
            try
            {
                string energy = Path.Combine(dir, "energy_uj");
                _ = ReadMicrojoules(energy);
                zones.Add((energy, ReadMicrojoules(Path.Combine(dir, "max_energy_range_uj"))));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { }
        }
        return zones.Count > 0 ? new EnergyCounter(zones.ToArray()) : null;
    }

    public double[] Read() => _zones.Select(z => ReadMicrojoules(z.Path)).ToArray();

    /// <summary>Joules between two <see cref="Read"/>s.</summary>
    public double JoulesBetween(double[] before, double[] after) =>
        _zones.Select((z, i) => (after[i] >= before[i] ? after[i] - before[i] : after[i] + z.Range - before[i]) * 1e-6).Sum();

    private static double ReadMicrojoules(string path) => double.Parse(File.ReadAllText(path).Trim(), CultureInfo.InvariantCulture);
}
