using System.Globalization;
using System.Net;
using System.Text;

namespace Coldmind.Reports;

/// <summary>One named series of (x, y) points; NaN values are left out.</summary>
public sealed record Series(string Name, IReadOnlyList<double> X, IReadOnlyList<double> Y);

/// <summary>
/// A line chart as a standalone SVG string: axes with rounded ticks, one coloured line with point markers
/// per series, and a legend. Written by hand (no plotting library restores here) and kept dependency-free.
/// </summary>
public sealed class LineChart(string title, string xLabel, string yLabel)
{
    private static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];
    private readonly List<Series> _series = [];

    public int Width { get; init; } = 640;
    public int Height { get; init; } = 360;

    public LineChart Add(Series s)
    {
        if (s.X.Count != s.Y.Count) throw new ArgumentException($"Series '{s.Name}' has {s.X.Count} x values and {s.Y.Count} y values.");
        _series.Add(s);
        return this;
    }

    public string ToSvg()
    {
        const int left = 64, right = 150, top = 36, bottom = 48;
        double plotW = Width - left - right, plotH = Height - top - bottom;
        var points = _series.SelectMany(s => s.X.Zip(s.Y)).Where(p => double.IsFinite(p.First) && double.IsFinite(p.Second)).ToList();
        var (x0, x1) = points.Count > 0 ? (points.Min(p => p.First), points.Max(p => p.First)) : (0.0, 1.0);
        var (y0, y1) = points.Count > 0 ? (points.Min(p => p.Second), points.Max(p => p.Second)) : (0.0, 1.0);
        var xTicks = Ticks(x0, x1);
        var yTicks = Ticks(y0, y1);
        (x0, x1) = (Math.Min(x0, xTicks[0]), Math.Max(x1, xTicks[^1]));
        (y0, y1) = (Math.Min(y0, yTicks[0]), Math.Max(y1, yTicks[^1]));
        double Sx(double x) => left + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * plotW;
        double Sy(double y) => top + plotH - (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5) * plotH;

        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" font-family=\"sans-serif\" font-size=\"12\">");
        svg.Append(CultureInfo.InvariantCulture, $"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width / 2}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{Escape(title)}</text>");
        foreach (double t in yTicks)
        {
            double y = Sy(t);
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{left}\" y1=\"{y:F1}\" x2=\"{left + plotW:F1}\" y2=\"{y:F1}\" stroke=\"#e5e5e5\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left - 6}\" y=\"{y + 4:F1}\" text-anchor=\"end\">{Format(t)}</text>");
        }
        foreach (double t in xTicks)
        {
            double x = Sx(t);
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{x:F1}\" y1=\"{top + plotH:F1}\" x2=\"{x:F1}\" y2=\"{top + plotH + 5:F1}\" stroke=\"#333\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{x:F1}\" y=\"{top + plotH + 18:F1}\" text-anchor=\"middle\">{Format(t)}</text>");
        }
        svg.Append(CultureInfo.InvariantCulture, $"<rect x=\"{left}\" y=\"{top}\" width=\"{plotW:F1}\" height=\"{plotH:F1}\" fill=\"none\" stroke=\"#333\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{left + plotW / 2:F1}\" y=\"{Height - 8}\" text-anchor=\"middle\">{Escape(xLabel)}</text>");
        svg.Append(CultureInfo.InvariantCulture, $"<text transform=\"translate(16 {top + plotH / 2:F1}) rotate(-90)\" text-anchor=\"middle\">{Escape(yLabel)}</text>");
        for (int i = 0; i < _series.Count; i++)
        {
            var s = _series[i];
            string colour = Palette[i % Palette.Length];
            var pts = s.X.Zip(s.Y).Where(p => double.IsFinite(p.First) && double.IsFinite(p.Second)).Select(p => $"{Sx(p.First):F1},{Sy(p.Second):F1}").ToList();
            if (pts.Count > 1) svg.Append(CultureInfo.InvariantCulture, $"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{string.Join(' ', pts)}\"/>");
            foreach (var p in pts)
            {
                var xy = p.Split(',');
                svg.Append(CultureInfo.InvariantCulture, $"<circle cx=\"{xy[0]}\" cy=\"{xy[1]}\" r=\"3\" fill=\"{colour}\"/>");
            }
            double ly = top + 10 + 20 * i;
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{Width - right + 14}\" y1=\"{ly:F1}\" x2=\"{Width - right + 34}\" y2=\"{ly:F1}\" stroke=\"{colour}\" stroke-width=\"2\"/>");
            svg.Append(CultureInfo.InvariantCulture, $"<text x=\"{Width - right + 40}\" y=\"{ly + 4:F1}\">{Escape(s.Name)}</text>");
        }
        svg.Append("</svg>");
        return svg.ToString();
    }

    /// <summary>About five ticks at 1, 2 or 5 × 10^k spacing covering [lo, hi].</summary>
    internal static double[] Ticks(double lo, double hi)
    {
        if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
        double raw = (hi - lo) / 5, mag = Math.Pow(10, Math.Floor(Math.Log10(raw))), norm = raw / mag;
        double step = (norm < 1.5 ? 1 : norm < 3.5 ? 2 : norm < 7.5 ? 5 : 10) * mag;
        double start = Math.Floor(lo / step) * step, end = Math.Ceiling(hi / step) * step;
        int count = (int)Math.Round((end - start) / step) + 1;
        return Enumerable.Range(0, count).Select(i => start + i * step).ToArray();
    }

    private static string Format(double v) => Math.Abs(v) < 1e-12 ? "0" : v.ToString("G4", CultureInfo.InvariantCulture);

    private static string Escape(string s) => WebUtility.HtmlEncode(s);
}
