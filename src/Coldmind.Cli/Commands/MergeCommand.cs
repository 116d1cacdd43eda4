using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Merging;
using Coldmind.Models;

namespace Coldmind.Cli.Commands;

/// <summary>
/// `coldmind merge RECIPE --out OUT`: carries out a merge recipe (linear, task arithmetic, TIES, DARE, SLERP,
/// passthrough) on classifier checkpoints or GGUF language models; a classifier child is measured on the test
/// split of the data its first model was trained on, next to the models the recipe names.
/// </summary>
internal static class MergeCommand
{
    public static Command Create()
    {
        var recipe = new Argument<string>("recipe") { Description = "a JSON merge recipe (see docs/merge.md)" };
        var output = new Option<string>("--out") { Description = "the merged model: .safetensors for classifiers, .gguf for language models", Required = true };
        var json = CommonOptions.Json();
        var cmd = new Command("merge", "Merge models by a recipe (linear, task_arithmetic, ties, dare_linear, dare_ties, slerp, passthrough).") { recipe, output, json };
        cmd.SetAction(r =>
        {
            string outPath = r.GetValue(output)!;
            var plan = MergeRecipe.Load(r.GetValue(recipe)!);
            var merger = new Merger();
            var child = merger.Merge(plan, Path.GetFileNameWithoutExtension(outPath));
            child.Save(outPath, plan.ToJsonString());
            var rows = new List<(string Name, string Architecture, long Parameters, double? Accuracy)>();
            if (!child.IsLanguageModel)
            {
                var test = TrainingData.SplitsOf(Provenance.Read(child.Metadata, child.Name)).Splits.Test;
                var judge = new ClassifierJudge(test, test, null);
                foreach (var source in Sources(plan).Where(s => s.Path != null).DistinctBy(s => s.Path))
                {
                    var m = merger.Load(source);
                    rows.Add((m.Name, m.Architecture, m.ParameterCount, judge.Judge(m, test: true).Score));
                }
                rows.Add((Path.GetFileName(outPath), child.Architecture, child.ParameterCount, judge.Judge(child, test: true).Score));
            }
            else rows.Add((Path.GetFileName(outPath), child.Architecture, child.ParameterCount, null));

            if (r.GetValue(json))
            {
                Console.WriteLine(JsonOutput.Serialize(new Dictionary<string, object?>
                {
                    ["method"] = plan.Method,
                    ["out"] = outPath,
                    ["architecture"] = child.Architecture,
                    ["parameters"] = child.ParameterCount,
                    ["models"] = rows.Select(x => new Dictionary<string, object?> { ["name"] = x.Name, ["architecture"] = x.Architecture, ["test_accuracy"] = x.Accuracy }).ToList(),
                }));
                return 0;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("model", "architecture", "parameters", "test accuracy");
            foreach (var x in rows)
                table.AddRow(Markup.Escape(x.Name), Markup.Escape(x.Architecture), x.Parameters.ToString("N0", CultureInfo.InvariantCulture),
                    x.Accuracy is { } a ? a.ToString("P2", CultureInfo.InvariantCulture) : "–");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLineInterpolated($"{plan.Method} merge written to [bold]{outPath}[/].");
            return 0;
        });
        return cmd;
    }

    /// <summary>The models a recipe names directly (not those inside nested recipes).</summary>
    private static IEnumerable<ModelSource> Sources(MergeRecipe recipe) =>
        (recipe.Base is { } b ? [b] : Array.Empty<ModelSource>()).Concat(recipe.Models.Select(m => m.Source)).Concat(recipe.Slices.Select(s => s.Source));
}
