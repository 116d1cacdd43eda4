using Coldmind.Nn;

namespace Coldmind.Reports;

/// <summary>Reliability diagrams: accuracy against mean confidence per confidence bin; a calibrated model follows the diagonal.</summary>
public static class ReliabilityChart
{
    public static LineChart Of(string title, IEnumerable<(string Name, IReadOnlyList<ReliabilityBin> Bins)> models)
    {
        var chart = new LineChart(title, "confidence (%)", "accuracy (%)");
        chart.Add(new Series("perfect calibration", [0.0, 100.0], [0.0, 100.0]));
        foreach (var (name, bins) in models)
        {
            var filled = bins.Where(b => b.Count > 0).ToArray();
            chart.Add(new Series($"{name} (ECE {100 * Calibration.ErrorOf(bins):F1} %)", filled.Select(b => 100 * b.MeanConfidence).ToArray(), filled.Select(b => 100 * b.Accuracy).ToArray()));
        }
        return chart;
    }
}
