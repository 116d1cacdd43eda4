using System.CommandLine;
using Coldmind.Data;

namespace Coldmind.Cli.Options;

/// <summary>The data a command trains on, declared once for every such command: <c>--data</c> and <c>--label</c>.</summary>
internal sealed class DataOptions
{
    public Option<string> Data { get; } = new("--data")
    {
        Description = "digits (embedded, default), fashion-mnist (Debian's dataset-fashion-mnist), or a path to a .csv file",
        DefaultValueFactory = _ => "digits",
    };

    public Option<string?> Label { get; } = CommonOptions.LabelColumn();

    public void AddTo(Command command)
    {
        command.Options.Add(Data);
        command.Options.Add(Label);
    }

    /// <summary>The data named by --data, split by <paramref name="seed"/>.</summary>
    public DataSplits Load(ParseResult r, ulong seed) => BuiltinData.Load(r.GetValue(Data)!, seed, r.GetValue(Label));
}
