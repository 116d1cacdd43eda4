using System.Globalization;
using Coldmind.Formats;

namespace Coldmind.Data;

/// <summary>The data sets Coldmind knows by name, and CSV / IDX files by path.</summary>
public static class BuiltinData
{
    public const string FashionMnistDirectory = "/usr/share/datasets/fashion-mnist";

    private static readonly string[] FashionClasses =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>
    /// Loads "digits" (embedded), "fashion-mnist" (Debian's dataset-fashion-mnist) or a CSV path, split
    /// into train / validation / test. Digits and CSV: stratified 70/10/20; Fashion-MNIST: its own 10 000-image
    /// test set, and 5 000 training images held out for validation. Inputs are scaled to [0, 1]
    /// (images) or standardised with training-set statistics (CSV).
    /// </summary>
    public static DataSplits Load(string spec, ulong seed = 0, string? labelColumn = null)
    {
        switch (spec.ToLowerInvariant())
        {
            case "digits":
                return DataSplits.Stratified(Digits(), 0.1, 0.2, seed);
            case "fashion-mnist" or "fashion":
                var (train, test) = FashionMnist();
                return DataSplits.WithTestSet(train, test, 5000.0 / train.Count, seed);
        }
        if (spec.EndsWith(".csv", StringComparison.OrdinalIgnoreCase) || spec.EndsWith(".csv.gz", StringComparison.OrdinalIgnoreCase))
        {
            var splits = DataSplits.Stratified(FromCsv(spec, labelColumn), 0.1, 0.2, seed);
            var (mean, std) = splits.Train.FeatureMoments();
            return new DataSplits(splits.Train.Standardize(mean, std), splits.Validation.Standardize(mean, std), splits.Test.Standardize(mean, std));
        }
        throw new ColdmindException($"Unknown data '{spec}': use digits, fashion-mnist, or a path to a .csv file.");
    }

    /// <summary>1 797 8×8 images of digits, 16 grey levels, scaled to [0, 1]. UCI via scikit-learn, BSD-3.</summary>
    public static Dataset Digits()
    {
        using var s = typeof(BuiltinData).Assembly.GetManifestResourceStream("Coldmind.Data.digits.csv.gz")
            ?? throw new InvalidOperationException("The embedded digits data is missing from the assembly.");
        var table = CsvTable.Read(s, "digits.csv.gz");
        var x = table.Features;
        for (int i = 0; i < x.Length; i++) x[i] /= 16f;
        var labels = table.LabelValues.Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        return new Dataset("digits", x, labels, [1, 8, 8], Enumerable.Range(0, 10).Select(d => d.ToString(CultureInfo.InvariantCulture)).ToArray());
    }

    /// <summary>Fashion-MNIST's 60 000 training and 10 000 test images (1×28×28, scaled to [0, 1]).</summary>
    public static (Dataset Train, Dataset Test) FashionMnist(string directory = FashionMnistDirectory)
    {
        if (!Directory.Exists(directory))
            throw new ColdmindException($"Fashion-MNIST was not found in '{directory}'. Install it with: sudo apt-get install dataset-fashion-mnist");
        Dataset Part(string prefix) => FromIdx(Path.Combine(directory, prefix + "-images-idx3-ubyte.gz"), Path.Combine(directory, prefix + "-labels-idx1-ubyte.gz"), "fashion-mnist", FashionClasses);
        return (Part("train"), Part("t10k"));
    }

    /// <summary>An IDX image file (n, h, w) and its label file (n) as a data set of 1×h×w images in [0, 1].</summary>
    public static Dataset FromIdx(string imagesPath, string labelsPath, string name, string[] classNames)
    {
        var images = Idx.Read(imagesPath);
        var labels = Idx.Read(labelsPath);
        if (images.Shape.Length != 3) throw new ColdmindException($"'{imagesPath}' should hold images (n, height, width), not shape {Tensors.Shape.Format(images.Shape)}.");
        if (labels.Shape.Length != 1 || labels.Shape[0] != images.Shape[0])
            throw new ColdmindException($"'{labelsPath}' holds {labels.Shape[0]} labels for {images.Shape[0]} images in '{imagesPath}'.");
        var x = new float[images.Values.Length];
        for (int i = 0; i < x.Length; i++) x[i] = images.Values[i] / 255f;
        var y = new int[labels.Values.Length];
        for (int i = 0; i < y.Length; i++)
        {
            y[i] = labels.Values[i];
            if (y[i] >= classNames.Length) throw new ColdmindException($"'{labelsPath}': label {y[i]} at position {i} is outside 0..{classNames.Length - 1}.");
        }
        return new Dataset(name, x, y, [1, images.Shape[1], images.Shape[2]], classNames);
    }

    /// <summary>A CSV table as a data set; classes are the label column's distinct values, numerically sorted when they are numbers.</summary>
    public static Dataset FromCsv(string path, string? labelColumn = null)
    {
        var table = CsvTable.Read(path, labelColumn);
        var distinct = table.LabelValues.Distinct().ToArray();
        bool numeric = distinct.All(v => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out _));
        var classes = numeric
            ? distinct.OrderBy(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()
            : distinct.Order(StringComparer.Ordinal).ToArray();
        if (classes.Length < 2) throw new ColdmindException($"'{path}': the label column '{table.LabelName}' has only one value; a classifier needs at least two classes.");
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
        var labels = table.LabelValues.Select(v => index[v]).ToArray();
        return new Dataset(Path.GetFileName(path), table.Features, labels, [table.FeatureNames.Length], classes);
    }
}
