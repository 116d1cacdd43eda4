using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Data;
using Coldmind.Models;
using Coldmind.Nn;
using Coldmind.Reports;
using Coldmind.Shrink;
using Coldmind.Tensors;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind shrink`: teacher → distilled student → lottery ticket → ternary, each stage measured; the final model exported for `coldmind predict`.</summary>
internal static class ShrinkCommand
{
    public static Command Create()
    {
        var data = new DataOptions();
        var teacher = new Option<string>("--teacher")
        {
            Description = "teacher hidden sizes (a CNN teacher: one size), or a trained teacher: a .onnx file (fed raw features) or a `train` checkpoint",
            DefaultValueFactory = _ => "256,128",
        };
        var teacherChannels = new Option<string?>("--teacher-cnn") { Description = "make the teacher a CNN with these channels, e.g. 16,32 (image data)" };
        var student = new Option<string>("--student") { Description = "student hidden sizes", DefaultValueFactory = _ => "128" };
        var epochs = new Option<int>("--epochs") { Description = "epochs of each training (teacher, student, every pruning round, ternary)", DefaultValueFactory = _ => 100 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 64 };
        var lr = new Option<float>("--lr") { DefaultValueFactory = _ => 2e-3f };
        var temperature = new Option<float>("--temperature") { Description = "distillation temperature T", DefaultValueFactory = _ => 2f };
        var alpha = new Option<float>("--alpha") { Description = "weight of the soft (teacher) loss against the labels (0: labels only)", DefaultValueFactory = _ => 0.5f };
        var curate = new Option<float>("--curate") { Description = "drop training examples whose label the teacher gives less than this probability (0: keep all)", DefaultValueFactory = _ => 0f };
        var rounds = new Option<int>("--rounds") { Description = "pruning rounds", DefaultValueFactory = _ => 3 };
        var rate = new Option<double>("--prune-rate") { Description = "fraction of the remaining weights pruned each round", DefaultValueFactory = _ => 0.5 };
        var prune = new Option<string>("--prune") { Description = "global (one threshold over all layers) or layer (each layer, the output layer at half rate)", DefaultValueFactory = _ => "global" };
        var rewind = new Option<int>("--rewind") { Description = "training step the survivors are reset to each round (0: the initialisation)", DefaultValueFactory = _ => 0 };
        var seed = CommonOptions.Seed();
        var threads = CommonOptions.Threads();
        var output = new Option<string>("--out") { Description = "the final model (.safetensors, for `coldmind predict`)", DefaultValueFactory = _ => "shrunk.safetensors" };
        var teacherOut = new Option<string?>("--teacher-out") { Description = "also save the float teacher (.safetensors, a `coldmind train` checkpoint: the cloud model of `coldmind cascade`)" };
        var stagesOut = new Option<string?>("--stages-out")
            { Description = "also save every compiled stage (teacher, ticket, ticket int8, …) here, e.g. for `coldmind export`" };
        var report = new Option<string?>("--report") { Description = "write an HTML report with the plots" };
        var device = new DeviceOptions();
        var json = CommonOptions.Json();
        var cmd = new Command("shrink", "Teacher → distilled student → lottery ticket → ternary: what each stage buys in accuracy, bytes, time and joules.")
            { teacher, teacherChannels, student, epochs, batch, lr, temperature, alpha, curate, rounds, rate, prune, rewind, seed, threads, output, teacherOut, stagesOut, report, json };
        device.AddTo(cmd);
        data.AddTo(cmd);
        cmd.SetAction(r =>
        {
            CommonOptions.UseThreads(r.GetValue(threads));
            string outPath = r.GetValue(output)!;
            string? teacherPath = r.GetValue(teacherOut);
            foreach (var (flag, path) in new[] { ("--out", outPath), ("--teacher-out", teacherPath) })
                if (path != null && !path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) throw new ColdmindException($"{flag} must name a .safetensors file, got '{path}'.");
            string dataSpec = r.GetValue(data.Data)!;
            ulong s = r.GetValue(seed);
            var splits = data.Load(r, s);
            string teacherText = r.GetValue(teacher)!;
            bool given = File.Exists(teacherText); // a trained teacher rather than hidden sizes
            var options = new ShrinkOptions
            {
                Given = given ? LoadTeacher(teacherText, dataSpec, s, r.GetValue(data.Label), splits.Train) : null,
                TeacherHidden = given ? [] : CommonOptions.ParseSizes(teacherText, "--teacher"),
                TeacherChannels = r.GetValue(teacherChannels) is { } tc ? CommonOptions.ParseSizes(tc, "--teacher-cnn") : null, StudentHidden = CommonOptions.ParseSizes(r.GetValue(student)!, "--student"),
                Epochs = r.GetValue(epochs), BatchSize = r.GetValue(batch), LearningRate = r.GetValue(lr), Temperature = r.GetValue(temperature), Alpha = r.GetValue(alpha),
                Device = device.Load(r),
                Curate = r.GetValue(curate), Rounds = r.GetValue(rounds), PruneRate = r.GetValue(rate), RewindStep = r.GetValue(rewind), Seed = s,
                RandomControl = r.GetValue(report) != null, // the report plots winning tickets against random re-initialisation
                GlobalPruning = r.GetValue(prune) switch { "global" => true, "layer" => false, var p => throw new ColdmindException($"--prune must be global or layer, got '{p}'.") },
            };
            if (options.Curate is < 0 or >= 1) throw new ColdmindException($"--curate must be a probability in [0, 1), got {options.Curate}.");
            bool asJson = r.GetValue(json);
            if (!asJson)
                AnsiConsole.MarkupLineInterpolated($"Shrinking on [bold]{dataSpec}[/]: {splits.Train.Count} train / {splits.Validation.Count} validation / {splits.Test.Count} test, {r.GetValue(threads)} thread(s)");

            ShrinkResult? result = null;
            ProgressView.Run(asJson, progress => result = ShrinkPipeline.Run(splits, options, progress));
            var (stages, final, ticketRounds) = (result!.Stages, result.Final, result.Rounds);
            var made = new Provenance { Data = dataSpec, Seed = s, Label = r.GetValue(data.Label) };
            var shrunk = Provenance.Read(final.Metadata, outPath) with { Data = made.Data, Seed = made.Seed, Label = made.Label, TestAccuracy = stages[^1].TestAccuracy };
            final.WithMetadata(shrunk.ToMetadata()).Save(outPath);
            if (teacherPath != null)
            {
                var teacher = made with { Spec = result.TeacherSpec, Temperature = stages[0].Temperature };
                TensorFile.Write(teacherPath, result.Teacher.NamedParameters(), teacher.ToMetadata());
            }
            if (r.GetValue(stagesOut) is { } stagesDir)
            {
                Directory.CreateDirectory(stagesDir);
                foreach (var (stage, model) in result.Compiled)
                    model.WithMetadata((Provenance.Read(model.Metadata, stagesDir) with { Data = made.Data, Seed = made.Seed, Label = made.Label }).ToMetadata())
                        .Save(Path.Combine(stagesDir, stage.Replace(' ', '-') + ".safetensors"));
            }
            if (r.GetValue(report) is { } reportPath) WriteReport(reportPath, dataSpec, stages, ticketRounds);

            if (asJson)
            {
                Console.WriteLine(JsonOutput.Serialize(new
                {
                    data = dataSpec, output = outPath, device = options.Device.Name,
                    stages = stages.Select(x => new
                    {
                        name = x.Name, description = x.Description, test_accuracy = x.TestAccuracy, expected_calibration_error = x.CalibrationError,
                        temperature = x.Temperature, calibrated_expected_calibration_error = x.CalibratedError,
                        parameters = x.Parameters, nonzero_parameters = x.NonZeroParameters, bits_per_weight = x.BitsPerWeight, bytes = x.Bytes,
                        latency_us = x.LatencyMicroseconds, joules_per_inference = x.JoulesPerInference, seconds = x.Seconds,
                    }),
                    ticket_rounds = ticketRounds.Select(t => new { round = t.Round, density = t.Density, test_accuracy = t.TestAccuracy, random_reinit_accuracy = t.RandomReinitAccuracy }),
                }));
                return 0;
            }
            var table = new Table().Border(TableBorder.Rounded)
                .AddColumns("stage", "test acc", "ECE", "ECE at T", "non-zero w", "bits/w", "bytes", "µs", $"µJ on {options.Device.Name}");
            foreach (var c in table.Columns.Skip(1)) c.RightAligned();
            foreach (var x in stages)
                table.AddRow(x.Name, $"{x.TestAccuracy:P2}", x.CalibrationError.ToString("F3", CultureInfo.InvariantCulture), x.CalibratedError.ToString("F3", CultureInfo.InvariantCulture),
                    x.NonZeroParameters.ToString("N0", CultureInfo.InvariantCulture), x.BitsPerWeight.ToString("F2", CultureInfo.InvariantCulture), x.Bytes.ToString("N0", CultureInfo.InvariantCulture),
                    x.LatencyMicroseconds.ToString("F2", CultureInfo.InvariantCulture), (x.JoulesPerInference * 1e6).ToString("F3", CultureInfo.InvariantCulture));
            AnsiConsole.Write(table);
            foreach (var x in stages) AnsiConsole.MarkupLineInterpolated($"[grey]{x.Name}: {x.Description}[/]");
            var first = stages[0];
            var last = stages[^1];
            AnsiConsole.MarkupLineInterpolated($"Wrote [bold]{outPath}[/]: {last.TestAccuracy:P2} test accuracy ({100 * (last.TestAccuracy - first.TestAccuracy):+0.00;−0.00} pt vs the teacher), {(double)first.Bytes / last.Bytes:F1}× smaller, {first.LatencyMicroseconds / last.LatencyMicroseconds:F1}× faster per inference. Run it: coldmind predict {outPath}");
            AnsiConsole.MarkupLineInterpolated($"[grey]ECE: expected calibration error of the softmax on the test split; ECE at T: after temperature scaling (T fitted on the validation split, {shrunk.Temperature} for the final model, saved with it).[/]");
            AnsiConsole.MarkupLineInterpolated($"[grey]µs measured here at batch 1; joules estimated by the cost model for {options.Device.Name} ({options.Device.Description}); see `coldmind cost`.[/]");
            return 0;
        });
        return cmd;
    }

    /// <summary>A trained teacher: an .onnx classifier (imported for the data's raw features) or a `coldmind train` checkpoint.</summary>
    private static (Nn.Module, ClassifierSpec) LoadTeacher(string path, string dataSpec, ulong seed, string? label, Dataset train)
    {
        var file = ModelFile.Open(path) switch
        {
            OnnxModelFile onnx => onnx.Import(dataSpec, seed, label),
            ClassifierFile { IsCompact: false } checkpoint => checkpoint,
            var other => throw other.NotA("a teacher (a train checkpoint or an ONNX classifier)"),
        };
        var spec = file.Provenance.Spec!;
        var model = spec.Build(new Tensors.Rng(0));
        model.LoadState(file.File.ToTensors());
        if (!spec.InputShape.SequenceEqual(train.SampleShape) || spec.Classes != train.Classes)
            throw new ColdmindException($"The teacher '{path}' takes {Tensors.Shape.Format(spec.InputShape)} and gives {spec.Classes} classes; " +
                $"'{dataSpec}' has examples of {Tensors.Shape.Format(train.SampleShape)} and {train.Classes} classes.");
        return (model, spec);
    }

    private static void WriteReport(string path, string dataSpec, IReadOnlyList<ShrinkStage> stages, IReadOnlyList<TicketRound> rounds)
    {
        // the stages no other stage beats on both accuracy and bytes
        var front = stages.Where(a => !stages.Any(b => b.TestAccuracy >= a.TestAccuracy && b.Bytes <= a.Bytes && (b.TestAccuracy > a.TestAccuracy || b.Bytes < a.Bytes)))
            .OrderBy(x => x.Bytes).ToArray();
        var bytes = new LineChart("Test accuracy against bytes on disk", "bytes (log10)", "test accuracy (%)");
        bytes.Add(new Series("stages", stages.Select(x => Math.Log10(x.Bytes)).ToArray(), stages.Select(x => 100.0 * x.TestAccuracy).ToArray()));
        bytes.Add(new Series("Pareto front", front.Select(x => Math.Log10(x.Bytes)).ToArray(), front.Select(x => 100.0 * x.TestAccuracy).ToArray()));
        var ticket = new LineChart("Lottery ticket: test accuracy against weights remaining", "weights remaining (%)", "test accuracy (%)");
        ticket.Add(new Series("ticket", rounds.Select(t => 100 * t.Density).ToArray(), rounds.Select(t => 100.0 * t.TestAccuracy).ToArray()));
        var control = rounds.Where(t => t.RandomReinitAccuracy != null).ToArray();
        if (control.Length > 0)
            ticket.Add(new Series("random init", control.Select(t => 100 * t.Density).ToArray(), control.Select(t => 100.0 * t.RandomReinitAccuracy!.Value).ToArray()));
        new HtmlReport($"coldmind shrink on {dataSpec}")
            .Table(["stage", "test accuracy", "bytes", "µs/inference", "µJ (estimated)", "what"],
                stages.Select(x => (IReadOnlyList<string>)[x.Name, $"{100 * x.TestAccuracy:F2} %", x.Bytes.ToString("N0", CultureInfo.InvariantCulture),
                    x.LatencyMicroseconds.ToString("F1", CultureInfo.InvariantCulture), (x.JoulesPerInference * 1e6).ToString("F3", CultureInfo.InvariantCulture), x.Description]))
            .Chart(bytes).Chart(ticket)
            .Paragraph("Reliability before and after temperature scaling (T fitted on the validation split, measured on the test split): a compressed model must still know what it does not know.")
            .Chart(ReliabilityChart.Of("Reliability, raw softmax", stages.Select(x => (x.Name, x.Reliability))))
            .Chart(ReliabilityChart.Of("Reliability, temperature-scaled", stages.Select(x => ($"{x.Name} T={x.Temperature:F2}", x.CalibratedReliability))))
            .Write(path);
    }
}
