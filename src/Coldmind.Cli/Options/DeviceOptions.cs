using System.CommandLine;
using Coldmind.Cost;
using Coldmind.Numerics;

namespace Coldmind.Cli.Options;

/// <summary>The device a command prices or simulates on, declared once: <c>--device</c> and <c>--device-file</c>.</summary>
internal sealed class DeviceOptions
{
    public Option<string> Device { get; } = new("--device")
    {
        Description = $"the device to cost on: {string.Join(", ", DeviceProfile.Shipped)} (host: this machine, measured now)",
        DefaultValueFactory = _ => "host",
    };

    public Option<string?> File { get; } = new("--device-file") { Description = "a device profile (JSON, as in devices/) for --device to name" };

    public void AddTo(Command command)
    {
        command.Options.Add(Device);
        command.Options.Add(File);
    }

    /// <summary>The profile named by --device (from --device-file if given); host is calibrated by measuring this machine.</summary>
    public DeviceProfile Load(ParseResult r) => Load(r.GetValue(Device)!, r.GetValue(File));

    /// <summary>A profile by name (from <paramref name="file"/> if given); host is calibrated by measuring this machine.</summary>
    public static DeviceProfile Load(string name, string? file) =>
        name == "host" && file == null ? HostCalibration.Calibrate(WorkerPool.Shared) : DeviceProfile.Load(name, file);
}
