using System.CommandLine;
using Coldmind.Data;
using Coldmind.Models;

namespace Coldmind.Cli.Options;

/// <summary>
/// The data a command runs a saved model on, declared once for every such command (predict, eval, cascade, adapt):
/// <c>--data</c>, <c>--label</c> and <c>--split-seed</c>, each defaulting to what the model's provenance records, so the
/// test split is the one its training never saw.
/// </summary>
internal sealed class ModelDataOptions
{
    public Option<string?> Data { get; } = new("--data")
    {
        Description = "digits, fashion-mnist or a .csv (default: the data the model was trained on)",
    };

    public Option<string?> Label { get; } = CommonOptions.LabelColumn();

    public Option<ulong?> SplitSeed { get; } = new("--split-seed")
    {
        Description = "seed of the train/validation/test split (default: the model's training seed)",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Data);
        command.Options.Add(Label);
        command.Options.Add(SplitSeed);
    }

    /// <summary>The data and its splits for a model whose file says <paramref name="provenance"/>.</summary>
    public (string DataSpec, DataSplits Splits) Splits(ParseResult r, Provenance provenance) =>
        TrainingData.SplitsOf(provenance, r.GetValue(Data), r.GetValue(SplitSeed), r.GetValue(Label));
}
