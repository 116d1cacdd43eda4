using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Cost;
using Coldmind.Formats;
using Coldmind.Merging;
using Coldmind.Models;
using Coldmind.Reports;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind evolve --parents A,B --space params|dataflow|both [--device D --max-joules J]`: evolves a merge of
/// the parents with CMA-ES, scored on the validation split (and within the device budget), then measures the
/// parents, the hand-set recipes and the evolved child on the test split.
/// </summary>
internal static class EvolveCommand
{
    public static Command Create()
    {
        var parentsOption = new Option<string>("--parents") { Description = "two or more classifier checkpoints (.safetensors) to merge, comma-separated", Required = true };
        var baseOption = new Option<string?>("--base") { Description = "the model the parents were fine-tuned from (task arithmetic, TIES and DARE merge the differences from it)" };
        var data = new Option<string?>("--data") { Description = "the union task: digits, fashion-mnist or a .csv (default: the data the first parent was trained on)" };
        var text = new Option<string?>("--text") { Description = "language-model parents: the corpora of the union task, comma-separated; the last 10 % of each (as `train-lm` holds out) is split into validation and test windows" };
        var context = new Option<int>("--context") { Description = "language models: characters per scored window", DefaultValueFactory = _ => 64 };
        var windows = new Option<int>("--windows") { Description = "language models: windows scored per split", DefaultValueFactory = _ => 48 };
        var space = new Option<string>("--space") { Description = "params (per-layer merge weights), dataflow (the path through the parents' layers) or both", DefaultValueFactory = _ => "both" };
        space.AcceptOnlyFromAmong("params", "dataflow", "both");
        var method = new Option<string>("--method") { Description = "parameter-space method: ties, dare_ties, dare_linear, task_arithmetic (these need --base) or linear", DefaultValueFactory = _ => "ties" };
        method.AcceptOnlyFromAmong("ties", "dare_ties", "dare_linear", "task_arithmetic", "linear");
        var ternary = new Option<string>("--ternary") { Description = "ternary classifier parents: merge their latent float weights (latent) or the scale × trits the forward pass sees (ternarized)", DefaultValueFactory = _ => "latent" };
        ternary.AcceptOnlyFromAmong("latent", "ternarized");
        var generations = new Option<int>("--generations") { Description = "CMA-ES generations (split between the spaces with --space both)", DefaultValueFactory = _ => 30 };
        var population = new Option<int>("--population") { Description = "candidates per generation (0: CMA-ES's default for the genome's size)", DefaultValueFactory = _ => 0 };
        var repetitions = new Option<int>("--repetitions") { Description = "data-flow space: how often each inner layer may appear on the path", DefaultValueFactory = _ => 2 };
        var device = new Option<string?>("--device") { Description = $"cost children on this device: {string.Join(", ", DeviceProfile.Shipped)} or host" };
        var deviceFile = new DeviceOptions().File;
        var maxJoules = new Option<double?>("--max-joules") { Description = "budget: joules per inference on --device" };
        var maxLatency = new Option<double?>("--max-latency") { Description = "budget: seconds per inference on --device" };
        var maxBytes = new Option<long?>("--max-bytes") { Description = "budget: bytes of weights" };
        var thermal = new Option<bool>("--thermal") { Description = "the child must sustain --rate on --device for 10 minutes without throttling, overheating or emptying the battery (the modal)" };
        var rate = new Option<double>("--rate") { Description = "with --thermal: inferences per second", DefaultValueFactory = _ => 100 };
        var seed = CommonOptions.Seed();
        var threads = CommonOptions.Threads();
        var output = new Option<string?>("--out") { Description = "write the evolved child (.safetensors)" };
        var recipeOut = new Option<string?>("--recipe-out") { Description = "write the evolved recipe (JSON, for `coldmind merge`)" };
        var json = CommonOptions.Json();
        var report = new Option<string?>("--report") { Description = "write an HTML report: fitness over generations, parents against children, the recipe" };
        var cmd = new Command("evolve", "Evolve a merge of models in parameter space, data-flow space or both, with a device-aware fitness.")
        {
            parentsOption, baseOption, data, text, context, windows, space, method, ternary, generations, population, repetitions, device, deviceFile, maxJoules, maxLatency, maxBytes,
            thermal, rate, seed, threads, output, recipeOut, json, report,
        };
        cmd.SetAction(r =>
        {
            CommonOptions.UseThreads(r.GetValue(threads));
            string? outPath = r.GetValue(output), recipePath = r.GetValue(recipeOut), reportPath = r.GetValue(report);
            if (outPath != null && !outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) throw new ColdmindException($"--out must name a .safetensors file, got '{outPath}'.");
            if (recipePath != null && !recipePath.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) throw new ColdmindException($"--recipe-out must name a .json file, got '{recipePath}'.");
            if (reportPath != null && !reportPath.EndsWith(".html", StringComparison.OrdinalIgnoreCase)) throw new ColdmindException($"--report must name an .html file, got '{reportPath}'.");
            var parentPaths = r.GetValue(parentsOption)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (parentPaths.Length < 2) throw new ColdmindException($"--parents needs at least two models, got {parentPaths.Length}.");
            var merger = new Merger();
            var parents = parentPaths.Select(p => ModelSource.File(Path.GetFullPath(p))).ToList();
            var first = merger.Load(parents[0]);
            var @base = r.GetValue(baseOption) is { } b ? ModelSource.File(Path.GetFullPath(b)) : null;
            bool ternarized = r.GetValue(ternary) == "ternarized";
            if (ternarized && first.Spec is not { Ternary: true })
                throw new ColdmindException($"--ternary ternarized merges ternary classifiers (`train --ternary`); '{first.Name}' is {(first.IsLanguageModel ? "a language model, merged from its stored trits anyway" : "a float classifier")}.");

            var budget = Budget(r.GetValue(device), r.GetValue(deviceFile), r.GetValue(maxJoules), r.GetValue(maxLatency), r.GetValue(maxBytes), r.GetValue(thermal), r.GetValue(rate));
            ulong s = r.GetValue(seed);
            string dataSpec;
            IChildJudge judge;
            if (first.IsLanguageModel)
            {
                dataSpec = r.GetValue(text) ?? throw new ColdmindException("Language-model parents need --text, the corpora of the union task they are scored on.");
                var (validation, test) = HeldOut(dataSpec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries), first);
                judge = new LanguageModelJudge(validation, test, r.GetValue(context), r.GetValue(windows), budget);
            }
            else
            {
                (dataSpec, var splits) = TrainingData.SplitsOf(Provenance.Read(first.Metadata, first.Name), r.GetValue(data));
                judge = new ClassifierJudge(splits.Validation, splits.Test, budget);
            }
            var options = new EvolutionOptions
            {
                Space = r.GetValue(space) switch { "params" => MergeSpace.Params, "dataflow" => MergeSpace.DataFlow, _ => MergeSpace.Both },
                Method = r.GetValue(method)!, Generations = r.GetValue(generations), Population = r.GetValue(population),
                Repetitions = r.GetValue(repetitions), Seed = s, Sparsify = budget is { Constrains: true }, Ternarized = ternarized,
            };
            var evolution = new MergeEvolution(merger, parents, @base, judge, options);
            bool quiet = r.GetValue(json);
            EvolutionResult? result = null;
            ProgressView.Steps("evolving", options.Generations, quiet, tick => result = evolution.Run(_ => tick()));

            // measured on the test split, which the search never saw
            var rows = new List<Row>();
            foreach (var p in parents) rows.Add(Measure("parent", merger.Load(p).Name, merger.Load(p), judge));
            foreach (var (name, recipe) in evolution.HandSet()) rows.Add(Measure("hand-set", name, merger.Merge(recipe), judge));
            var child = result!.Child;
            rows.Add(Measure("evolved", $"{r.GetValue(space)} ({result.Recipe.Method})", child, judge));
            string recipeJson = result.Recipe.ToJsonString();
            if (outPath != null) child.Save(outPath, recipeJson);
            if (recipePath != null) AtomicFile.Write(recipePath, st => st.Write(System.Text.Encoding.UTF8.GetBytes(recipeJson + "\n")));
            if (reportPath != null) WriteReport(reportPath, dataSpec, judge, budget, result, rows, recipeJson);

            if (quiet)
            {
                Console.WriteLine(JsonOutput.Serialize(new Dictionary<string, object?>
                {
                    ["data"] = dataSpec,
                    ["space"] = r.GetValue(space),
                    ["method"] = options.Method,
                    ["device"] = budget?.Device.Name,
                    ["generations"] = options.Generations,
                    ["evaluations"] = result.History.GroupBy(h => h.Space).Sum(g => g.Last().Evaluations),
                    ["models"] = rows.Select(x => x.ToJson(judge.Metric)).ToList(),
                    ["child"] = rows[^1].ToJson(judge.Metric),
                    ["recipe"] = result.Recipe.ToJson(),
                    ["history"] = result.History.Select(h => new Dictionary<string, object?>
                    {
                        ["space"] = h.Space, ["generation"] = h.Generation, ["best_validation"] = h.BestScore,
                        ["mean_validation"] = double.IsNaN(h.MeanScore) ? null : h.MeanScore,
                    }).ToList(),
                    ["out"] = outPath,
                    ["recipe_out"] = recipePath,
                    ["report"] = reportPath,
                }));
                return 0;
            }
            string metric = judge.Metric == "loss" ? " loss (nats/char)" : "";
            var table = new Table().Border(TableBorder.Rounded).AddColumns("", "model", "layers", "bytes", "joules/inference", "validation" + metric, "test" + metric);
            foreach (var c in table.Columns.Skip(2)) c.RightAligned();
            foreach (var x in rows)
                table.AddRow(x.Role, Markup.Escape(x.Name), x.Judgement.Layers.ToString(CultureInfo.InvariantCulture), x.Judgement.Bytes.ToString("N0", CultureInfo.InvariantCulture),
                    x.Judgement.Joules is { } j ? j.ToString("G3", CultureInfo.InvariantCulture) : "–",
                    Show(judge, x.Validation), Show(judge, x.Judgement.Score));
            AnsiConsole.Write(table);
            if (budget is { Constrains: true } && !result.Judgement.Feasible)
                AnsiConsole.MarkupLineInterpolated($"[yellow]No child met the budget on {budget.Device.Name}; the closest: {result.Judgement.Reason}.[/]");
            if (outPath != null) AnsiConsole.MarkupLineInterpolated($"Child written to [bold]{outPath}[/].");
            if (recipePath != null) AnsiConsole.MarkupLineInterpolated($"Recipe written to [bold]{recipePath}[/]; `coldmind merge {recipePath} --out child.safetensors` rebuilds the child.");
            if (reportPath != null) AnsiConsole.MarkupLineInterpolated($"Report written to [bold]{reportPath}[/].");
            return budget is { Constrains: true } && !result.Judgement.Feasible ? 2 : 0;
        });
        return cmd;
    }

    /// <summary>A score as people read it: accuracy in percent, a language model's loss (the negated score) in nats per character.</summary>
    private static string Show(IChildJudge judge, double score) =>
        judge.Metric == "loss" ? (-score).ToString("F4", CultureInfo.InvariantCulture) : score.ToString("P2", CultureInfo.InvariantCulture);

    /// <summary>
    /// The held-out end (last 10 %) of each corpus, cut to the shortest so each corpus weighs the same, encoded with
    /// the parent's vocabulary; the first half of each is validation, the second test.
    /// </summary>
    private static (int[] Validation, int[] Test) HeldOut(string[] files, MergeModel parent)
    {
        var tokens = parent.GgufMetadata!.FirstOrDefault(kv => kv.Key == "tokenizer.ggml.tokens").Value?.Value as string[]
            ?? throw new ColdmindException($"'{parent.Name}' has no vocabulary (tokenizer.ggml.tokens).");
        var vocabulary = LmTraining.CharacterVocabulary.FromTokens(tokens, $"'{parent.Name}'");
        var parts = files.Select(f =>
        {
            using var reader = new StreamReader(InputFile.Open(f));
            var ids = vocabulary.Encode(reader.ReadToEnd());
            return ids[(ids.Length * 9 / 10)..];
        }).ToList();
        int length = parts.Min(p => p.Length);
        return ([.. parts.SelectMany(p => p[..(length / 2)])], [.. parts.SelectMany(p => p[(length / 2)..length])]);
    }

    private sealed record Row(string Role, string Name, double Validation, Judgement Judgement)
    {
        /// <summary>Accuracies as they are; a language model's scores as losses (validation_loss, test_loss).</summary>
        public Dictionary<string, object?> ToJson(string metric)
        {
            bool loss = metric == "loss";
            return new()
            {
                ["role"] = Role, ["name"] = Name, ["layers"] = Judgement.Layers, ["bytes"] = Judgement.Bytes,
                ["joules_per_inference"] = Judgement.Joules, ["seconds_per_inference"] = Judgement.Seconds, ["within_budget"] = Judgement.Feasible,
                [$"validation_{metric}"] = loss ? -Validation : Validation, [$"test_{metric}"] = loss ? -Judgement.Score : Judgement.Score,
            };
        }
    }

    private static Row Measure(string role, string name, MergeModel model, IChildJudge judge) =>
        new(role, name, judge.Judge(model).Score, judge.Judge(model, test: true));

    private static DeviceBudget? Budget(string? device, string? deviceFile, double? maxJoules, double? maxSeconds, long? maxBytes, bool thermal, double rate)
    {
        var limits = new Budget(maxBytes, maxJoules, maxSeconds);
        if (device == null)
        {
            if (!limits.IsEmpty || thermal)
                throw new ColdmindException("--max-joules, --max-latency, --max-bytes and --thermal need --device, the device to cost the children on.");
            return null;
        }
        if (!(rate > 0)) throw new ColdmindException($"--rate must be positive, got {rate}.");
        limits.Validate();
        return new DeviceBudget(DeviceOptions.Load(device, deviceFile), limits, thermal ? new ModalLoad(rate, 25, 600) : null);
    }

    private static void WriteReport(string path, string data, IChildJudge judge, DeviceBudget? budget, EvolutionResult result, List<Row> rows, string recipe)
    {
        var x = Enumerable.Range(1, result.History.Count).Select(i => (double)i).ToArray();
        var chart = new LineChart($"Fitness over generations (validation {(judge.Metric == "loss" ? "−loss, nats/char" : "accuracy")})", "generation", judge.Metric == "loss" ? "−loss" : "accuracy")
            .Add(new Series("best so far", x, result.History.Select(h => h.BestScore).ToArray()))
            .Add(new Series("generation mean", x, result.History.Select(h => h.MeanScore).ToArray()));
        string F(double? v, string format) => v is { } d ? d.ToString(format, CultureInfo.InvariantCulture) : "–";
        new HtmlReport($"coldmind evolve on {data}")
            .Paragraph(budget == null ? "No device budget." : $"Device {budget.Device.Name}; budget: {budget.Limits.Describe()}; thermal: {(budget.Thermal != null ? $"sustain {budget.Thermal.Rate} inferences/s for 10 minutes" : "no")}.")
            .Chart(chart)
            .Paragraph(string.Join(" ", result.History.GroupBy(h => h.Space).Select(g => $"{g.Key}: generations {g.First().Generation}–{g.Last().Generation}, {g.Last().Evaluations} children.")))
            .Table(["", "model", "layers", "bytes", "joules/inference", "within budget", $"validation {judge.Metric}", $"test {judge.Metric}"],
                rows.Select(r => (IReadOnlyList<string>)[r.Role, r.Name, r.Judgement.Layers.ToString(CultureInfo.InvariantCulture), r.Judgement.Bytes.ToString("N0", CultureInfo.InvariantCulture),
                    F(r.Judgement.Joules, "G3"), r.Judgement.Feasible ? "yes" : "no", Show(judge, r.Validation), Show(judge, r.Judgement.Score)]))
            .Paragraph("The evolved recipe (`coldmind merge` rebuilds the child from it):")
            .Code(recipe)
            .Write(path);
    }
}
