using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Cost;
using Coldmind.Reports;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind modal MODEL --device D --rate R`: the thermal and battery sandbox. Runs the workload on the device's
/// lumped thermal model with DVFS and a battery, and says whether the model passes its physical test: the rate
/// sustained, when it throttles, how hot it gets, how long the battery lasts.
/// </summary>
internal static class ModalCommand
{
    public static Command Create()
    {
        var model = new Argument<string>("MODEL") { Description = "a .gguf language model, a classifier written by `coldmind train` or `coldmind shrink`, or a .json network description" };
        var device = new DeviceOptions();
        var rate = new Option<double>("--rate") { Description = "inferences (or tokens) asked per second while on", Required = true };
        var ambient = new Option<double>("--ambient") { Description = "ambient temperature, °C", DefaultValueFactory = _ => 25 };
        var duration = new Option<double>("--duration") { Description = "simulated seconds", DefaultValueFactory = _ => 600 };
        var duty = new Option<double>("--duty") { Description = "fraction of each period the load is on (bursts); 1: always on", DefaultValueFactory = _ => 1 };
        var period = new Option<double>("--period") { Description = "seconds of one on/off cycle when --duty < 1", DefaultValueFactory = _ => 60 };
        var context = new Option<int>("--context") { Description = "language models: cached tokens per generated token", DefaultValueFactory = _ => 256 };
        var report = new Option<string?>("--report") { Description = "write an HTML report: temperature, clock and throughput over time, energy split" };
        var json = CommonOptions.Json();
        var cmd = new Command("modal", "Thermal and battery sandbox: does the model throttle on the device at this rate?")
            { model, rate, ambient, duration, duty, period, context, report, json };
        device.AddTo(cmd);
        cmd.SetAction(r =>
        {
            var profile = device.Load(r);
            var workload = Workload.Open(r.GetValue(model)!, r.GetValue(context));
            var load = new ModalLoad(r.GetValue(rate), r.GetValue(ambient), r.GetValue(duration), r.GetValue(duty), r.GetValue(period));
            var v = Modal.Simulate(workload, profile, load);
            if (r.GetValue(report) is { } reportPath) WriteReport(reportPath, workload, v);
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonOutput.Serialize(new
                {
                    model = workload.Name, device = profile.Name, unit = workload.Unit, rate = load.Rate, duty_cycle = load.DutyCycle, ambient_c = load.AmbientCelsius, duration_seconds = load.DurationSeconds,
                    sustained_rate = v.SustainedRate, time_to_throttle_seconds = v.TimeToThrottleSeconds, max_temperature_c = v.MaxCelsius, overheated = v.Overheated,
                    battery_empty_seconds = v.BatteryEmptySeconds, battery_life_seconds = v.BatteryLifeSeconds is { } life && double.IsFinite(life) ? life : (double?)null,
                    battery_lasts_indefinitely = v.BatteryLifeSeconds is double.PositiveInfinity, energy_joules = v.Joules, passes = v.Passes, verdict = v.Reason,
                }));
                return 0;
            }
            var table = new Table().Border(TableBorder.Rounded).Title($"{Markup.Escape(workload.Name)} on {profile.Name}, {load.Rate:G4} {workload.Unit}s/s at {load.AmbientCelsius:G3} °C for {load.DurationSeconds:G4} s")
                .AddColumns("", "").HideHeaders();
            table.AddRow("sustained rate", $"{v.SustainedRate:G4} {workload.Unit}s/s (asked {load.MeanRate:G4})");
            table.AddRow("time to throttle", v.TimeToThrottleSeconds is { } t ? $"{t:G4} s" : "never");
            table.AddRow("max temperature", $"{v.MaxCelsius:F1} °C (throttles at {profile.ThrottleCelsius:G3} °C)");
            table.AddRow("energy", $"{v.Joules:G4} J ({v.Joules / load.DurationSeconds:G3} W mean)");
            if (profile.BatteryJoules > 0)
                table.AddRow("battery", v.BatteryEmptySeconds is { } b ? $"empty after {b:G4} s"
                    : v.BatteryLifeSeconds is double.PositiveInfinity ? "lasts indefinitely (harvest covers the drain)" : $"lasts {v.BatteryLifeSeconds / 3600:G4} h at this load");
            table.AddRow("verdict", v.Passes ? $"[green]passes[/]: {Markup.Escape(v.Reason)}" : $"[red]fails[/]: {Markup.Escape(v.Reason)}");
            AnsiConsole.Write(table);
            return 0;
        });
        return cmd;
    }

    private static void WriteReport(string path, Workload workload, ModalVerdict v)
    {
        var s = v.Series;
        double[] time = s.Select(x => x.Seconds).ToArray();
        var temperature = new LineChart("Die temperature", "time (s)", "°C")
            .Add(new Series("temperature", time, s.Select(x => x.Celsius).ToArray()))
            .Add(new Series("throttle limit", [time[0], time[^1]], [v.Device.ThrottleCelsius, v.Device.ThrottleCelsius]));
        var clock = new LineChart("Clock (DVFS)", "time (s)", "MHz").Add(new Series("clock", time, s.Select(x => x.Hertz / 1e6).ToArray()));
        var throughput = new LineChart($"Throughput ({workload.Unit}s per second)", "time (s)", $"{workload.Unit}s/s")
            .Add(new Series("served", time, s.Select(x => x.Throughput).ToArray()))
            .Add(new Series("asked", [time[0], time[^1]], [v.Load.Rate, v.Load.Rate]));
        var energy = new LineChart("Energy so far, split", "time (s)", "J")
            .Add(new Series("compute-bound", time, s.Select(x => x.ComputeJoules).ToArray()))
            .Add(new Series("memory", time, s.Select(x => x.MemoryJoules).ToArray()))
            .Add(new Series("idle", time, s.Select(x => x.IdleJoules).ToArray()));
        var page = new HtmlReport($"coldmind modal: {workload.Name} on {v.Device.Name}")
            .Paragraph($"{v.Device.Description}. Asked {v.Load.Rate.ToString("G4", CultureInfo.InvariantCulture)} {workload.Unit}s/s (duty {v.Load.DutyCycle:P0}) at {v.Load.AmbientCelsius} °C for {v.Load.DurationSeconds} s.")
            .Paragraph($"Verdict: {(v.Passes ? "passes" : "fails")} — {v.Reason}. Sustained {v.SustainedRate:G4}/s, max {v.MaxCelsius:F1} °C, {v.Joules:G4} J.")
            .Chart(temperature).Chart(clock).Chart(throughput).Chart(energy);
        if (v.Device.BatteryJoules > 0)
            page.Chart(new LineChart("Battery", "time (s)", "kJ").Add(new Series("charge", time, s.Select(x => (x.BatteryJoules ?? 0) / 1e3).ToArray())));
        page.Write(path);
    }
}
