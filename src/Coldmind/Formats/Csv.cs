using System.Globalization;

namespace Coldmind.Formats;

/// <summary>
/// A numeric table from CSV: every column is a float feature except the label column, whose distinct
/// values (numbers or words) become the classes. A first row with any non-numeric field is a header.
/// </summary>
public sealed record CsvTable(string[] FeatureNames, float[] Features, string[] LabelValues, string LabelName)
{
    public int Rows => LabelValues.Length;

    /// <summary>
    /// Reads <paramref name="path"/> (plain or gzip). The label column is given by header name or by index
    /// (negative counts from the end; default −1, the last column).
    /// </summary>
    public static CsvTable Read(string path, string? labelColumn = null, char separator = ',')
    {
        using var stream = InputFile.Open(path);
        return Read(stream, path, labelColumn, separator);
    }

    /// <summary>Reads CSV text (plain or gzip) from a stream; <paramref name="path"/> names it in error messages.</summary>
    public static CsvTable Read(Stream input, string path, string? labelColumn = null, char separator = ',')
    {
        using var reader = new StreamReader(InputFile.MaybeGzip(input));
        var rows = new List<string[]>();
        string? line;
        int lineNo = 0;
        string[]? header = null;
        int width = -1, label = -1, firstDataLine = 1;
        var features = new List<float>();
        var labels = new List<string>();
        try
        {
            while ((line = reader.ReadLine()) != null)
            {
                lineNo++;
                if (line.Length == 0 || line.StartsWith('#')) continue;
                var fields = line.Split(separator);
                for (int i = 0; i < fields.Length; i++) fields[i] = fields[i].Trim().Trim('"');
                if (width < 0)
                {
                    width = fields.Length;
                    if (width < 2) throw new ColdmindException($"'{path}' line {lineNo}: a table needs at least one feature and a label column.");
                    bool isHeader = fields.Any(f => !float.TryParse(f, NumberStyles.Float, CultureInfo.InvariantCulture, out _));
                    label = ResolveLabel(path, labelColumn, isHeader ? fields : null, width);
                    if (isHeader) { header = fields; firstDataLine = lineNo + 1; continue; }
                }
                if (fields.Length != width)
                    throw new ColdmindException($"'{path}' line {lineNo}: {fields.Length} fields, but the table has {width} columns.");
                for (int i = 0; i < width; i++)
                {
                    if (i == label) { labels.Add(fields[i]); continue; }
                    if (!float.TryParse(fields[i], NumberStyles.Float, CultureInfo.InvariantCulture, out float v) || !float.IsFinite(v))
                        throw new ColdmindException($"'{path}' line {lineNo}, column {i + 1}{(header != null ? $" ('{header[i]}')" : "")}: '{fields[i]}' is not a number.");
                    features.Add(v);
                }
            }
        }
        catch (InvalidDataException e)
        {
            throw new ColdmindException($"'{path}' is corrupt: {e.Message}", e);
        }
        if (labels.Count == 0) throw new ColdmindException($"'{path}' has no data rows (from line {firstDataLine}).");
        var names = Enumerable.Range(0, width).Where(i => i != label).Select(i => header?[i] ?? $"x{i}").ToArray();
        return new CsvTable(names, [.. features], [.. labels], header?[label] ?? $"column {label + 1}");
    }

    private static int ResolveLabel(string path, string? spec, string[]? header, int width)
    {
        if (spec == null) return width - 1;
        if (int.TryParse(spec, NumberStyles.Integer, CultureInfo.InvariantCulture, out int index))
        {
            int i = index < 0 ? width + index : index;
            if (i < 0 || i >= width) throw new ColdmindException($"Label column {index} is out of range: '{path}' has {width} columns (0..{width - 1}).");
            return i;
        }
        if (header == null) throw new ColdmindException($"Label column '{spec}' was given by name, but '{path}' has no header row.");
        int at = Array.FindIndex(header, h => string.Equals(h, spec, StringComparison.OrdinalIgnoreCase));
        if (at < 0) throw new ColdmindException($"'{path}' has no column named '{spec}' (columns: {string.Join(", ", header)}).");
        return at;
    }
}
