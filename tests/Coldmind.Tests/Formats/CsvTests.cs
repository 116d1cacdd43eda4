using Xunit;
using Coldmind.Data;
using Coldmind.Formats;

namespace Coldmind.Tests;

public class CsvTests
{
    [Fact]
    public void Header_is_detected_and_label_found_by_name_or_index()
    {
        using var dir = new TempDir();
        var path = dir.File("t.csv");
        File.WriteAllText(path, "a,kind,b\n1,cat,2\n3,dog,4.5\n5,cat,-6e-1\n");
        var byName = CsvTable.Read(path, "kind");
        Assert.Equal(["a", "b"], byName.FeatureNames);
        Assert.Equal([1f, 2f, 3f, 4.5f, 5f, -0.6f], byName.Features);
        Assert.Equal(["cat", "dog", "cat"], byName.LabelValues);
        var byIndex = CsvTable.Read(path, "1");
        Assert.Equal(byName.Features, byIndex.Features);
        var data = BuiltinData.FromCsv(path, "kind");
        Assert.Equal(["cat", "dog"], data.ClassNames);
        Assert.Equal([0, 1, 0], data.Labels);
    }

    [Fact]
    public void Headerless_file_uses_the_last_column()
    {
        using var dir = new TempDir();
        var path = dir.File("t.csv");
        File.WriteAllText(path, "1,2,0\n3,4,1\n");
        var t = CsvTable.Read(path);
        Assert.Equal(["0", "1"], t.LabelValues);
        Assert.Equal(4, t.Features.Length);
    }

    [Theory]
    [InlineData("a,b,y\n1,2,0\n3,oops,1\n", null, "line 3, column 2 ('b'): 'oops' is not a number")]
    [InlineData("a,b,y\n1,2,0\n3,1\n", null, "line 3: 2 fields, but the table has 3 columns")]
    [InlineData("a,b,y\n1,2,0\n", "label", "has no column named 'label'")]
    [InlineData("1,2,0\n", "y", "has no header row")]
    [InlineData("a,b,y\n1,2,0\n", "7", "Label column 7 is out of range")]
    [InlineData("a,b,y\n", null, "has no data rows")]
    public void Bad_tables_get_a_message_naming_line_and_value(string text, string? label, string expected)
    {
        using var dir = new TempDir();
        var path = dir.File("bad.csv");
        File.WriteAllText(path, text);
        var e = Assert.Throws<ColdmindException>(() => CsvTable.Read(path, label));
        Assert.Contains(expected, e.Message);
        Assert.Contains("bad.csv", e.Message);
    }
}
