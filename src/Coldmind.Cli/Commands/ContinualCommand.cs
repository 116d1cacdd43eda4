using Spectre.Console;
using System.CommandLine;
using System.Globalization;
using Coldmind.Cli.Options;
using Coldmind.Cli.Output;
using Coldmind.Data;
using Coldmind.Swarm;

namespace Coldmind.Cli.Commands;

/// <summary>`coldmind continual`: a device learns a second task after a first; how much of the first it forgets, with and without EWC and replay.</summary>
internal static class ContinualCommand
{
    public static Command Create()
    {
        var data = new DataOptions();
        var first = new Option<string>("--first") { Description = "the first task's classes, e.g. 0-4 or 0,2,4", DefaultValueFactory = _ => "0-4" };
        var hidden = new Option<string>("--hidden") { Description = "hidden layer sizes, or none", DefaultValueFactory = _ => "100" };
        var epochs = new Option<int>("--epochs") { Description = "epochs on each task", DefaultValueFactory = _ => 2 };
        var batch = new Option<int>("--batch") { Description = "mini-batch size", DefaultValueFactory = _ => 32 };
        var lr = new Option<float>("--lr") { Description = "SGD learning rate", DefaultValueFactory = _ => 0.05f };
        var ewc = new Option<float>("--ewc") { Description = "EWC strength λ (the Fisher is normalised to mean 1)", DefaultValueFactory = _ => 1000f };
        var replay = new Option<int>("--replay") { Description = "examples of the first task the device remembers (reservoir)", DefaultValueFactory = _ => 500 };
        var fisherExamples = new Option<int>("--fisher-examples") { Description = "examples the Fisher information is estimated on", DefaultValueFactory = _ => 500 };
        var seed = CommonOptions.Seed();
        var json = CommonOptions.Json();
        var cmd = new Command("continual", "Learn a second task after a first on the device: forgetting with plain fine-tuning, EWC, replay, both.")
            { first, hidden, epochs, batch, lr, ewc, replay, fisherExamples, seed, json };
        data.AddTo(cmd);
        cmd.SetAction(r =>
        {
            string dataSpec = r.GetValue(data.Data)!;
            var splits = data.Load(r, r.GetValue(seed));
            var firstClasses = CommonOptions.ParseClasses(r.GetValue(first)!, splits.Train.Classes, "--first");
            if (firstClasses.Count == splits.Train.Classes) throw new ColdmindException("--first names every class; leave some for the second task.");
            var train = splits.Train;
            int[] firstTask = Enumerable.Range(0, train.Count).Where(i => firstClasses.Contains(train.Labels[i])).ToArray();
            int[] secondTask = Enumerable.Range(0, train.Count).Where(i => !firstClasses.Contains(train.Labels[i])).ToArray();
            var learner = LocalLearner.For(train, CommonOptions.ParseHidden(r.GetValue(hidden)!), r.GetValue(seed));
            var options = new ContinualOptions(r.GetValue(epochs), r.GetValue(batch), r.GetValue(lr), r.GetValue(ewc), r.GetValue(replay), r.GetValue(fisherExamples), r.GetValue(seed));
            IReadOnlyList<ContinualResult> results = null!;
            ProgressView.Steps("two tasks", 6, r.GetValue(json), tick => results = ContinualLearning.Run(learner, train, firstTask, secondTask, splits.Test, firstClasses, options, _ => tick()));
            string firstName = string.Join(",", firstClasses.Order());
            if (r.GetValue(json))
            {
                Console.WriteLine(JsonOutput.Serialize(new
                {
                    data = dataSpec, first_task = firstName, ewc = options.EwcStrength, replay = options.ReplayExamples, epochs = options.Epochs,
                    results = results.Select(x => new { method = x.Method, first_before = x.FirstBefore, first_after = x.FirstAfter, forgetting = x.Forgetting, second = x.Second, both = x.Both }),
                }));
                return 0;
            }
            var table = new Table().Border(TableBorder.Rounded).AddColumns("while learning task 2", "task 1 before", "task 1 after", "forgotten", "task 2", "all classes");
            foreach (var c in table.Columns.Skip(1)) c.RightAligned();
            foreach (var x in results)
                table.AddRow(x.Method, $"{x.FirstBefore:P2}", $"{x.FirstAfter:P2}", (x.Forgetting * 100).ToString("F2", CultureInfo.InvariantCulture) + " pt", $"{x.Second:P2}", $"{x.Both:P2}");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLineInterpolated($"[grey]{dataSpec}: task 1 = classes {firstName} ({firstTask.Length} examples), task 2 = the rest ({secondTask.Length}); one head for all classes; EWC λ = {options.EwcStrength:G3}, replay buffer {options.ReplayExamples} examples.[/]");
            return 0;
        });
        return cmd;
    }
}
