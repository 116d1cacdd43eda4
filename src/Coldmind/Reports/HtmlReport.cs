using System.Net;
using System.Text;
using Coldmind.Formats;

namespace Coldmind.Reports;

/// <summary>A self-contained HTML page (no scripts, no external files): a title, tables and inline SVG charts.</summary>
public sealed class HtmlReport(string title)
{
    private readonly StringBuilder _body = new();

    public HtmlReport Paragraph(string text)
    {
        _body.Append("<p>").Append(WebUtility.HtmlEncode(text)).Append("</p>\n");
        return this;
    }

    /// <summary>Preformatted text, e.g. a JSON recipe.</summary>
    public HtmlReport Code(string text)
    {
        _body.Append("<pre>").Append(WebUtility.HtmlEncode(text)).Append("</pre>\n");
        return this;
    }

    public HtmlReport Table(IReadOnlyList<string> header, IEnumerable<IReadOnlyList<string>> rows)
    {
        _body.Append("<table><tr>");
        foreach (var h in header) _body.Append("<th>").Append(WebUtility.HtmlEncode(h)).Append("</th>");
        _body.Append("</tr>\n");
        foreach (var row in rows)
        {
            _body.Append("<tr>");
            foreach (var cell in row) _body.Append("<td>").Append(WebUtility.HtmlEncode(cell)).Append("</td>");
            _body.Append("</tr>\n");
        }
        _body.Append("</table>\n");
        return this;
    }

    public HtmlReport Chart(LineChart chart)
    {
        _body.Append("<figure>").Append(chart.ToSvg()).Append("</figure>\n");
        return this;
    }

    public string ToHtml() => $"""
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>{WebUtility.HtmlEncode(title)}</title>
        <style>body{"{"}font-family:sans-serif;max-width:60em;margin:2em auto;color:#222{"}"} table{"{"}border-collapse:collapse;margin:1em 0{"}"}
        th,td{"{"}border:1px solid #ccc;padding:.3em .7em;text-align:right{"}"} th{"{"}background:#f3f3f3{"}"} figure{"{"}margin:1em 0{"}"}</style></head>
        <body><h1>{WebUtility.HtmlEncode(title)}</h1>
        {_body}</body></html>
        """;

    /// <summary>Writes the page atomically (temporary file, then rename).</summary>
    public void Write(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(ToHtml());
        AtomicFile.Write(path, s => s.Write(bytes));
    }
}
