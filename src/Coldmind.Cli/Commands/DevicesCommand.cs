using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Cost;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind devices [NAME]`: the shipped device profiles side by side, or one with the source of every number.</summary>
internal static class DevicesCommand
{
    private static string F(double v) => v.ToString("G3", CultureInfo.InvariantCulture);

    public static Command Create()
    {
        var name = new Argument<string?>("NAME") { Description = "show one profile with its sources (host: measured now)", Arity = ArgumentArity.ZeroOrOne };
        var deviceFile = new DeviceOptions().File;
        var json = CommonOptions.Json();
        var cmd = new Command("devices", "List the device profiles the cost model and the modal know, or show one with its sources.") { name, deviceFile, json };
        cmd.SetAction(r =>
        {
            var profiles = r.GetValue(name) is { } n ? [DeviceOptions.Load(n, r.GetValue(deviceFile))] : DeviceProfile.Shipped.Select(d => DeviceProfile.Load(d)).ToArray();
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonOutput.Serialize(profiles.Select(p => new
                {
                    name = p.Name, description = p.Description, process_nm = p.ProcessNm, core_volts = p.CoreVolts,
                    ops_per_second = p.OpsPerSecond.ToDictionary(k => k.Key.ToString(), k => k.Value),
                    memory = p.Memory.Select(m => new { name = m.Name, bytes = m.Bytes, bytes_per_second = m.BytesPerSecond, joules_per_byte = m.JoulesPerByte, on_chip = m.OnChip }),
                    idle_watts = p.IdleWatts, dvfs = p.Dvfs.Select(s => new { hertz = s.Hertz, watts = s.Watts }),
                    celsius_per_watt = p.CelsiusPerWatt, joules_per_celsius = p.JoulesPerCelsius, throttle_celsius = p.ThrottleCelsius,
                    battery_joules = p.BatteryJoules, harvest_watts = p.HarvestWatts, sources = p.Sources,
                })));
                return 0;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("device", "GHz", "int8 MAC/s", "weights from", "active W", "°C/W", "throttle", "battery");
            foreach (var c in table.Columns.Skip(1)) c.RightAligned();
            foreach (var p in profiles)
            {
                var m = p.WeightsIn != null ? p.Memory.First(x => x.Name == p.WeightsIn) : p.Memory[^1];
                table.AddRow(p.Name, F(p.Hertz / 1e9), F(p.OpsPerSecond[OpKind.Int8Mac]), $"{m.Name}, {F(m.BytesPerSecond / 1e9)} GB/s", F(p.ActiveWatts),
                    F(p.CelsiusPerWatt), $"{F(p.ThrottleCelsius)} °C", p.BatteryJoules > 0 ? $"{F(p.BatteryJoules / 3600)} Wh" : "mains");
            }
            AnsiConsole.Write(table);
            if (profiles.Length == 1)
                foreach (var (field, source) in profiles[0].Sources) AnsiConsole.MarkupLineInterpolated($"[bold]{field}[/]: {source}");
            else AnsiConsole.MarkupLine("[grey]`coldmind devices NAME` shows where each number comes from; host is measured when named.[/]");
            return 0;
        });
        return cmd;
    }
}
