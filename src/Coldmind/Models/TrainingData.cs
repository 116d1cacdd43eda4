using Coldmind.Data;

namespace Coldmind.Models;

/// <summary>The data a model was made from, recovered from its <see cref="Provenance"/>.</summary>
public static class TrainingData
{
    /// <summary>
    /// The splits a model was trained with (its data, split seed and CSV label column), unless <paramref name="data"/>,
    /// <paramref name="seed"/> or <paramref name="label"/> say otherwise; digits and seed 0 when the file says nothing.
    /// The test split is then the one training never saw.
    /// </summary>
    public static (string DataSpec, DataSplits Splits) SplitsOf(Provenance provenance, string? data = null, ulong? seed = null, string? label = null)
    {
        string dataSpec = data ?? provenance.Data ?? "digits";
        return (dataSpec, BuiltinData.Load(dataSpec, seed ?? provenance.Seed ?? 0, label ?? provenance.Label));
    }

    /// <summary>How the data a model was trained on was scaled before the model saw it (digits by default).</summary>
    public static InputScaling ScalingOf(Provenance provenance) =>
        InputScaling.For(provenance.Data ?? "digits", provenance.Seed ?? 0, provenance.Label);
}
