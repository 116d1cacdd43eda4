using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.LmTraining;
using Coldmind.Nn;
using Coldmind.Numerics;
using Coldmind.Reports;
using Coldmind.Runtime.Lm;
using Coldmind.Tensors;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind train-lm --text FILE --out tiny.gguf`: trains a character-level BitNet b1.58 transformer on plain
/// text, and a float model of the same shape for the same steps on the same windows; reports both validation
/// losses; exports the ternary model as a bitnet-architecture GGUF (TQ2_0 projections) and samples from it
/// with the runtime, so the file is checked end to end. With --init it fine-tunes a model it wrote before (its
/// shape, precision and vocabulary), which is how parents that share a pretrained base are made for merging.
/// </summary>
internal static class TrainLmCommand
{
    public static Command Create()
    {
        var text = new Option<string>("--text") { Description = "a UTF-8 text file, e.g. ../shared/data/text/tinyshakespeare.txt", Required = true };
        var output = new Option<string>("--out") { Description = "the .gguf file for the trained model (ternary, or as --init)", Required = true };
        var floatOut = new Option<string?>("--float-out") { Description = "also write the float baseline as GGUF (F32)" };
        var steps = new Option<int>("--steps") { Description = "optimizer steps", DefaultValueFactory = _ => 600 };
        var dim = new Option<int>("--dim") { Description = "model width (a multiple of 256)", DefaultValueFactory = _ => 256 };
        var layers = new Option<int>("--layers") { DefaultValueFactory = _ => 4 };
        var heads = new Option<int>("--heads") { DefaultValueFactory = _ => 4 };
        var ffn = new Option<int>("--ffn") { Description = "feed-forward width (a multiple of 256)", DefaultValueFactory = _ => 768 };
        var act = new Option<string>("--ffn-act") { Description = "relu2 (BitNet 2B4T) or silu (what llama.cpp's bitnet graph computes)", DefaultValueFactory = _ => "relu2" };
        var context = new Option<int>("--context") { Description = "training window in characters", DefaultValueFactory = _ => 128 };
        var batch = new Option<int>("--batch") { DefaultValueFactory = _ => 16 };
        var lr = new Option<float>("--lr") { DefaultValueFactory = _ => 2e-3f };
        var baseline = new Option<bool>("--no-baseline") { Description = "skip the float model" };
        var vocabText = new Option<string?>("--vocab-text") { Description = "build the character vocabulary from this text instead (e.g. several corpora together), so models trained on different texts share token ids and can be merged" };
        var init = new Option<string?>("--init") { Description = "fine-tune this model (a .gguf written by train-lm or merge): its shape, precision and vocabulary replace --dim, --layers, --heads, --ffn, --ffn-act and --vocab-text; no float baseline is trained" };
        var initOut = new Option<string?>("--init-out") { Description = "also write the untrained initialisation as GGUF: the shared base of models trained from the same --seed, for `coldmind merge`" };
        var seed = CommonOptions.Seed();
        var threads = CommonOptions.Threads();
        var json = CommonOptions.Json();
        var report = new Option<string?>("--report") { Description = "write the loss curves as an HTML report" };
        var cmd = new Command("train-lm", "Train a small ternary (BitNet b1.58) language model on text; export GGUF; compare with float.")
            { text, output, floatOut, steps, dim, layers, heads, ffn, act, context, batch, lr, baseline, vocabText, init, initOut, seed, threads, json, report };
        cmd.SetAction(r =>
        {
            CommonOptions.UseThreads(r.GetValue(threads));
            string outPath = r.GetValue(output)!;
            if (!outPath.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) throw new ColdmindException($"--out must name a .gguf file, got '{outPath}'.");
            string content;
            using (var reader = new StreamReader(Formats.InputFile.Open(r.GetValue(text)!))) content = reader.ReadToEnd();
            if (content.Length < 1000) throw new ColdmindException($"'{r.GetValue(text)}' has {content.Length} characters; give at least 1 000.");
            if (r.GetValue(init) != null && (r.GetValue(initOut) != null || r.GetValue(vocabText) != null))
                throw new ColdmindException("--init starts from a trained model and its vocabulary; it cannot be combined with --init-out or --vocab-text.");
            var start = r.GetValue(init) is { } initPath ? TinyLmExport.Read(initPath) : default((TinyLm Model, CharacterVocabulary Vocabulary)?);
            CharacterVocabulary vocabulary;
            if (start is { } s0) vocabulary = s0.Vocabulary;
            else if (r.GetValue(vocabText) is { } vt)
            {
                using var vr = new StreamReader(Formats.InputFile.Open(vt));
                string all = vr.ReadToEnd();
                var missing = content.EnumerateRunes().Distinct().Where(c => !all.Contains(c.ToString(), StringComparison.Ordinal)).Take(5).ToList();
                if (missing.Count > 0) throw new ColdmindException($"--vocab-text '{vt}' lacks characters of --text, e.g. {string.Join(" ", missing.Select(c => $"U+{c.Value:X4}"))}.");
                vocabulary = new CharacterVocabulary(all);
            }
            else vocabulary = new CharacterVocabulary(content);
            var ids = vocabulary.Encode(content);
            int split = ids.Length * 9 / 10;
            int[] train = ids[..split], validation = ids[split..];
            var activation = r.GetValue(act) switch
            {
                "relu2" => Activation.SquaredRelu,
                "silu" => Activation.Silu,
                var a => throw new ColdmindException($"--ffn-act must be relu2 or silu, got '{a}'."),
            };
            var config = start?.Model.Config ?? new TinyLmConfig(vocabulary.Size, r.GetValue(dim), r.GetValue(layers), r.GetValue(heads), r.GetValue(heads), r.GetValue(ffn),
                Ternary: true, FfnActivation: activation);
            var options = new LmTrainOptions(r.GetValue(steps), r.GetValue(batch), r.GetValue(context), r.GetValue(lr), Seed: r.GetValue(seed),
                EvalEvery: Math.Max(1, r.GetValue(steps) / 10));
            if (r.GetValue(initOut) is { } io) TinyLmExport.Write(new TinyLm(config, new Rng(r.GetValue(seed))), vocabulary, io, Path.GetFileNameWithoutExtension(io));
            bool quiet = r.GetValue(json);
            bool withBaseline = !r.GetValue(baseline) && start == null; // a fine-tune has no baseline of the other precision to start from

            var models = new List<(string Name, TinyLm Model, IReadOnlyList<LmStep> Steps)>();
            var startState = start?.Model.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor);
            var variants = withBaseline ? new[] { config, config with { Ternary = false } } : [config];
            ProgressView.Run(quiet, progress =>
            {
                foreach (var c in variants)
                {
                    var model = new TinyLm(c, new Rng(r.GetValue(seed)));
                    if (startState != null) model.LoadState(startState);
                    string stage = $"training the {(c.Ternary ? "ternary" : "float")} model";
                    models.Add((c.Ternary ? "ternary" : "float", model, LmTrainer.Train(model, train, validation, options,
                        step => progress.Report(new StageProgress(stage, step.Step, options.Steps, "loss", step.TrainLoss)))));
                }
            });
            var trained = models[0];
            TinyLmExport.Write(trained.Model, vocabulary, outPath, Path.GetFileNameWithoutExtension(outPath));
            if (r.GetValue(floatOut) is { } fo && models.Count > 1) TinyLmExport.Write(models[1].Model, vocabulary, fo, Path.GetFileNameWithoutExtension(fo));

            // end to end: the exported file through the runtime, greedy from the first characters of the validation text
            using var lm = LanguageModel.Load(outPath);
            string prompt = content[split..Math.Min(content.Length, split + 32)];
            var sample = Generator.Generate(lm.CreateSession(256), lm.Tokenizer, lm.Tokenizer.Encode(prompt), 120, new Sampler(new SamplerOptions(Temperature: 0, RepeatPenalty: 1)));
            float? LossOf(string name) => models.FirstOrDefault(m => m.Name == name).Steps?[^1].ValidationLoss;
            long parameters = trained.Model.ParameterCount;

            if (r.GetValue(report) is { } reportPath)
                WriteReport(reportPath, models, config);
            if (quiet)
            {
                Console.WriteLine(JsonOutput.Serialize(new
                {
                    output = outPath, vocabulary = vocabulary.Size, parameters, file_bytes = new FileInfo(outPath).Length, steps = options.Steps,
                    ternary_validation_loss = LossOf("ternary"), float_validation_loss = LossOf("float"),
                    train_seconds = models.Select(m => new { model = m.Name, seconds = m.Steps[^1].Seconds }), prompt, sample = sample.Text,
                }));
                return 0;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("model", "validation loss (nats/char)", "bits/char", "train seconds");
            foreach (var (name, _, s) in models)
            {
                float v = s[^1].ValidationLoss!.Value;
                table.AddRow(name, v.ToString("F4", CultureInfo.InvariantCulture), (v / MathF.Log(2)).ToString("F3", CultureInfo.InvariantCulture), s[^1].Seconds.ToString("F0", CultureInfo.InvariantCulture));
            }
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLineInterpolated($"Wrote [bold]{outPath}[/]: {parameters:N0} parameters, {new FileInfo(outPath).Length:N0} bytes ({(config.Ternary ? "TQ2_0" : "F32")} projections, F32 embedding and norms).");
            AnsiConsole.MarkupLineInterpolated($"[grey]Greedy sample from the file (prompt: the first 32 validation characters):[/]");
            Console.WriteLine(prompt + sample.Text);
            return 0;
        });
        return cmd;
    }

    private static void WriteReport(string path, List<(string Name, TinyLm Model, IReadOnlyList<LmStep> Steps)> models, TinyLmConfig config)
    {
        var chart = new LineChart("Validation loss (nats per character)", "step", "loss");
        foreach (var (name, _, steps) in models)
        {
            var measured = steps.Where(s => s.ValidationLoss != null).ToArray();
            chart.Add(new Series(name, measured.Select(s => (double)s.Step).ToArray(), measured.Select(s => (double)s.ValidationLoss!.Value).ToArray()));
        }
        new HtmlReport($"train-lm: {config.Layers} layers × {config.Dim}, BitNet b1.58 vs float").Chart(chart).Write(path);
    }
}
