using System.Globalization;

namespace Coldmind.Data;

/// <summary>
/// How <see cref="BuiltinData.Load"/> turns the raw features a user has into what a model sees:
/// scaled = (raw − Offset) / Divisor, per feature, or one value for all when the arrays hold one entry.
/// Images: pixels / 255 (Fashion-MNIST, IDX) or / 16 (digits); CSV: standardised with the training split's
/// mean and deviation (a deviation ≤ 1e-12 divides by 1), as the split seed draws it.
/// </summary>
/// <see cref="SampleShape"/>: the shape of one example as the data set gives it.
public sealed record InputScaling(float[] Offset, float[] Divisor, int[] SampleShape)
{
    public bool IsIdentity => Offset.All(o => o == 0) && Divisor.All(d => d == 1);

    /// <summary>The scaling of <paramref name="dataSpec"/> (a name or a CSV path) under split seed <paramref
    /// name="seed"/>.</summary>
    public static InputScaling For(string dataSpec, ulong seed = 0, string? labelColumn = null)
    {
        switch (dataSpec.ToLowerInvariant())
        {
            case "digits":
                return new([0], [16], [1, 8, 8]);
            case "fashion-mnist" or "fashion":
                return new([0], [255], [1, 28, 28]);
        }
        if (
            dataSpec.EndsWith(".csv", StringComparison.OrdinalIgnoreCase)
            || dataSpec.EndsWith(".csv.gz", StringComparison.OrdinalIgnoreCase)
        )
        {
            var (mean, std) = DataSplits
                .Stratified(BuiltinData.FromCsv(dataSpec, labelColumn), 0.1, 0.2, seed)
                .Train.FeatureMoments();
            return new(mean, std.Select(s => s > 1e-12f ? s : 1f).ToArray(), [mean.Length]);
        }
        throw new ColdmindException($"Unknown data '{dataSpec}': use digits, fashion-mnist, or a path to a .csv file.");
    }

    /// <summary>Offset and divisor expanded to <paramref name="features"/> values each.</summary>
    public (float[] Offset, float[] Divisor) Expand(int features)
    {
        if (Offset.Length != 1 && Offset.Length != features)
            throw new ColdmindException(
                $"The data's scaling has {Offset.Length} features; the model takes {features}."
            );
        return Offset.Length == 1
            ? (Enumerable.Repeat(Offset[0], features).ToArray(), Enumerable.Repeat(Divisor[0], features).ToArray())
            : (Offset, Divisor);
    }
}
