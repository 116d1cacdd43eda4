using Spectre.Console;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Cost;
using Coldmind.Models;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Tensors;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind cost MODEL… --device D`: what one inference (or token) costs on a device before deploying: op
/// counts, bytes, roofline latency and its binding limit, joules split into compute and memory, the
/// bandwidth-bound rate, the arithmetic and Landauer floors. Several models: side by side, against the first.
/// `--measure` runs the model here for real and sets the measured time (and RAPL joules, where readable) beside the estimate.
/// </summary>
internal static class CostCommand
{
    public static Command Create()
    {
        var models = new Argument<string[]>("MODEL") { Description = "a .gguf language model, a classifier written by `coldmind train` or `coldmind shrink`, or a .json network description", Arity = ArgumentArity.OneOrMore };
        var device = new DeviceOptions();
        var context = new Option<int>("--context") { Description = "language models: cached tokens attention reads per generated token", DefaultValueFactory = _ => 256 };
        var ambient = new Option<double>("--ambient") { Description = "ambient temperature, °C (the device's steady temperature under load sets Landauer's kT)", DefaultValueFactory = _ => 25 };
        var measure = new Option<bool>("--measure") { Description = "also run the model here (needs --device host) and compare" };
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var cmd = new Command("cost", "Estimate joules, latency and the binding limit of a model on a device; --measure compares with a real run here.")
            { models, context, ambient, measure, threads, json };
        device.AddTo(cmd);
        cmd.SetAction(r =>
        {
            CommonOptions.UseThreads(r.GetValue(threads));
            bool measured = r.GetValue(measure);
            if (measured && r.GetValue(device.Device) != "host") throw new ColdmindException("--measure runs the model on this machine: use --device host.");
            var profile = device.Load(r);
            var rows = new List<Row>();
            foreach (string path in r.GetValue(models)!)
            {
                var workload = Workload.Open(path, r.GetValue(context));
                var estimate = CostModel.Estimate(workload, profile, r.GetValue(ambient));
                rows.Add(new Row(path, estimate, measured ? Measurement.Run(path, estimate, r.GetValue(ambient)) : null));
            }
            if (r.GetValue(json))
            {
                var objects = rows.Select(x => x.ToJson(rows[0])).ToArray();
                Console.WriteLine(objects.Length == 1 ? JsonOutput.Serialize(objects[0]) : JsonOutput.Serialize(new { device = profile.Name, models = objects }));
                return 0;
            }
            AnsiConsole.MarkupLineInterpolated($"On [bold]{profile.Name}[/]: {profile.Description}");
            if (rows.Count == 1) rows[0].Print();
            else PrintSideBySide(rows);
            foreach (var row in rows)
                if (Footprint.Of(row.Estimate.Workload, profile) is { } footprint)
                    AnsiConsole.WriteLine($"{row.Path} {footprint.Describe()}.");
            AnsiConsole.MarkupLine("[grey]Estimates: roofline time per layer from the profile's op rates and bandwidths; joules = device power × time + DRAM bytes × energy/byte (see docs/cost.md).[/]");
            return 0;
        });
        return cmd;
    }

    /// <summary>A quantity with an SI prefix: 2.657 M, 15.81 ms, 124.1 fJ.</summary>
    private static string Si(double v, string unit)
    {
        (double Scale, string Prefix)[] prefixes = [(1e9, "G"), (1e6, "M"), (1e3, "k"), (1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")];
        var (scale, prefix) = v == 0 ? (1, "") : prefixes.FirstOrDefault(p => Math.Abs(v) >= p.Scale, prefixes[^1]);
        return $"{(v / scale).ToString("G4", CultureInfo.InvariantCulture)} {prefix}{unit}".TrimEnd();
    }

    private static void PrintSideBySide(List<Row> rows)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumns("model", "bytes", "ops", "latency", "bound", "joules", "vs first");
        foreach (var c in table.Columns.Skip(1)) c.RightAligned();
        foreach (var x in rows)
        {
            var e = x.Estimate;
            table.AddRow(Markup.Escape(Path.GetFileNameWithoutExtension(x.Path)), Si(e.BytesPerUnit, "B"), Si(Enum.GetValues<OpKind>().Sum(k => (double)e.Workload.Ops(k)), ""),
                Si(e.Seconds, "s"), e.Bound, Si(e.Joules, "J"), $"{e.Joules / rows[0].Estimate.Joules:F3}×");
        }
        AnsiConsole.Write(table);
    }

    /// <summary>A model's estimate, with what is known to compare it against.</summary>
    private sealed record Row(string Path, CostEstimate Estimate, Measurement? Measured)
    {
        private double? Accuracy => Estimate.Workload.Accuracy;
        private IEnumerable<Published> Published => Estimate.Workload.PublishedResults.Where(p => p.Device == Estimate.Device.Name);

        public void Print()
        {
            var e = Estimate;
            string unit = e.Workload.Unit;
            var table = new Table().Border(TableBorder.Rounded).Title($"{Markup.Escape(e.Workload.Name)}, per {unit}").AddColumns("", "estimate").HideHeaders();
            table.AddRow("operations", Markup.Escape($"{Si(e.Workload.Ops(OpKind.Fp32Mac), "")} fp32 MAC, {Si(e.Workload.Ops(OpKind.Int8Mac), "")} int8 MAC, {Si(e.Workload.Ops(OpKind.TernaryAdd), "")} ternary add; {Si(e.Workload.SkippedZeros, "")} zeros skipped"));
            table.AddRow("bytes moved", Markup.Escape($"{Si(e.Workload.WeightBytes, "B")} of weights from {e.WeightLevel.Name}, {Si(e.Workload.ActivationBytes, "B")} of activations"));
            table.AddRow("latency", Markup.Escape($"{Si(e.Seconds, "s")} ({e.Bound}-bound); at most {e.BandwidthBoundRate:G4} {unit}s/s by bandwidth"));
            table.AddRow("energy", Markup.Escape($"{Si(e.Joules, "J")}: {Si(e.ComputeJoules, "J")} compute-bound, {Si(e.MemoryJoules, "J")} memory ({e.Watts:G3} W)"));
            table.AddRow("arithmetic floor", Markup.Escape($"{Si(e.ArithmeticJoules, "J")} (Horowitz 45 nm scaled to {e.Device.ProcessNm} nm): {e.Joules / e.ArithmeticJoules:G3}× below the estimate"));
            table.AddRow("Landauer floor", Markup.Escape($"{Si(e.LandauerJoules, "J")} at {e.Celsius:F0} °C: the estimate is {e.LandauerRatio:G3}× above it"));
            if (Accuracy is { } acc) table.AddRow("accuracy per joule", Markup.Escape($"{acc:P2} test accuracy, {acc / e.Joules:G4} per J"));
            foreach (var p in Published)
                table.AddRow("published", Markup.Escape(string.Join(", ", new[]
                {
                    p.Joules is { } j ? $"{Si(j, "J")} (estimate ÷ published = {e.Joules / j:F2})" : null,
                    p.Seconds is { } s ? $"{Si(s, "s")} (estimate ÷ published = {e.Seconds / s:F2})" : null,
                }.Where(t => t != null)) + $"; {p.Source}"));
            if (Measured is { } m)
                table.AddRow("measured here", Markup.Escape($"{Si(m.Seconds, "s")} per {unit} (estimate ÷ measured = {m.Estimate.Seconds / m.Seconds:F2}, at the measured run's mean context); "
                    + (m.Joules is { } mj ? $"{Si(mj, "J")} by RAPL (estimate ÷ measured = {m.Estimate.Joules / mj:F2})" : "joules not measurable here (no readable RAPL counter): estimated only")));
            AnsiConsole.Write(table);
        }

        public object ToJson(Row first) => new
        {
            model = Path, device = Estimate.Device.Name, unit = Estimate.Workload.Unit,
            fp32_macs = Estimate.Workload.Ops(OpKind.Fp32Mac), int8_macs = Estimate.Workload.Ops(OpKind.Int8Mac), ternary_adds = Estimate.Workload.Ops(OpKind.TernaryAdd),
            fits = Footprint.Of(Estimate.Workload, Estimate.Device)?.Fits,
            skipped_zeros = Estimate.Workload.SkippedZeros, weight_bytes = Estimate.Workload.WeightBytes, bytes_per_inference = Estimate.BytesPerUnit, weights_in = Estimate.WeightLevel.Name,
            latency_seconds = Estimate.Seconds, bound = Estimate.Bound, bandwidth_bound_rate = Estimate.BandwidthBoundRate,
            joules_per_inference = Estimate.Joules, compute_joules = Estimate.ComputeJoules, memory_joules = Estimate.MemoryJoules,
            arithmetic_joules = Estimate.ArithmeticJoules, landauer_joules = Estimate.LandauerJoules, landauer_ratio = Estimate.LandauerRatio, device_celsius = Estimate.Celsius,
            test_accuracy = Accuracy, accuracy_per_joule = Accuracy / Estimate.Joules, joules_vs_first = Estimate.Joules / first.Estimate.Joules,
            published = Published.Select(p => new { joules = p.Joules, seconds = p.Seconds, source = p.Source, joules_ratio = Estimate.Joules / p.Joules, seconds_ratio = Estimate.Seconds / p.Seconds }),
            measured = Measured is { } m ? new { seconds = m.Seconds, joules = m.Joules, joules_measured = m.Joules != null, estimated_seconds = m.Estimate.Seconds, seconds_ratio = m.Estimate.Seconds / m.Seconds } : null,
        };
    }

    /// <summary>A real run of the model on this machine: median seconds per unit and, where RAPL is readable, joules.</summary>
    private sealed record Measurement(double Seconds, double? Joules, CostEstimate Estimate)
    {
        /// <param name="estimate">the model's estimate on the host; a language model's is redone at the measured run's mean context</param>
        public static Measurement Run(string path, CostEstimate estimate, double ambient)
        {
            var counter = EnergyCounter.Open();
            var opened = ModelFile.Open(path);
            if (opened is GgufModelFile)
            {
                const int tokens = 32;
                using var lm = LanguageModel.Load(path);
                var before = counter?.Read();
                var clock = Stopwatch.StartNew();
                var (_, tg) = ModelBenchmark.Measure(lm, 0, tokens, 3);
                double seconds = 1 / tg!.Value;
                double? joules = counter != null ? counter.JoulesBetween(before!, counter.Read()) / clock.Elapsed.TotalSeconds * seconds : null;
                return new Measurement(seconds, joules, CostModel.Estimate(Workload.FromGguf(path, tokens / 2), estimate.Device, ambient));
            }
            if (opened is ClassifierFile file)
            {
                var model = ClassifierModel.From(file);
                var rng = new Rng(1);
                var inputs = Enumerable.Range(0, 64).Select(_ => Enumerable.Range(0, model.Inputs).Select(_ => rng.NextFloat()).ToArray()).ToArray();
                const int runs = 2000;
                var times = new List<double>();
                var before = counter?.Read();
                for (int pass = 0; pass < 5; pass++)
                {
                    var clock = Stopwatch.StartNew();
                    for (int i = 0; i < runs; i++) model.Logits(inputs[i % inputs.Length]);
                    times.Add(clock.Elapsed.TotalSeconds / runs);
                }
                double? joules = counter != null ? counter.JoulesBetween(before!, counter.Read()) / (5.0 * runs) : null;
                times.Sort();
                return new Measurement(times[2], joules, estimate);
            }
            throw new ColdmindException($"'{path}' is a description, not a model with weights: --measure runs language models and classifiers.");
        }
    }
}
