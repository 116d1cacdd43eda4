using System.Xml.Linq;
using Xunit;
using Coldmind.Reports;

namespace Coldmind.Tests;

public class ReportTests
{
    [Theory]
    [InlineData(0.43, 0.99, new[] { 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0 })]
    [InlineData(1, 20, new[] { 0.0, 5, 10, 15, 20 })]
    [InlineData(3, 3, new[] { 2.4, 2.6, 2.8, 3.0, 3.2, 3.4, 3.6 })]
    public void Ticks_are_round_and_cover_the_range(double lo, double hi, double[] expected)
    {
        var ticks = LineChart.Ticks(lo, hi);
        Assert.Equal(expected.Length, ticks.Length);
        for (int i = 0; i < ticks.Length; i++) Assert.Equal(expected[i], ticks[i], 9);
    }

    [Fact]
    public void Chart_is_well_formed_svg_with_one_line_per_series_and_escaped_text()
    {
        var svg = new LineChart("loss <&> accuracy", "epoch", "value")
            .Add(new Series("train", [1, 2, 3], [0.5, 0.7, 0.9]))
            .Add(new Series("validation", [1, 2, 3], [0.4, double.NaN, 0.8]))
            .ToSvg();
        var doc = XDocument.Parse(svg);
        XNamespace ns = "http://www.w3.org/2000/svg";
        Assert.Equal(2, doc.Descendants(ns + "polyline").Count());
        Assert.Equal(5, doc.Descendants(ns + "circle").Count()); // the NaN point is left out
        Assert.Contains(doc.Descendants(ns + "text"), t => t.Value == "loss <&> accuracy");
    }

    [Fact]
    public void Cli_writes_a_report_with_both_charts()
    {
        using var dir = new TempDir();
        var path = dir.File("train.html");
        var (exit, _, stderr) = CliProcess.Run("train", "--epochs", "3", "--report", path, "--json");
        Assert.True(exit == 0, stderr);
        var html = File.ReadAllText(path);
        Assert.Equal(2, html.Split("<svg").Length - 1);
        Assert.Contains("test accuracy", html);
        var (badExit, _, badErr) = CliProcess.Run("train", "--report", dir.File("train.txt"));
        Assert.Equal(1, badExit);
        Assert.Contains("--report must name an .html file", badErr);
    }
}
