using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Coldmind.Network;

/// <summary>
/// The Kestrel hosting every Coldmind server shares (escalation, gossip nodes, the FedAvg coordinator): a host on
/// HOST:PORT with a body bound, bounded body reads, and one-line refusals that are logged.
/// </summary>
public static class HttpHost
{
    /// <summary>Answers <paramref name="status"/> with <paramref name="reason"/> as one line of text, and logs it with the request and its sender.</summary>
    public static async Task Refuse(HttpContext ctx, int status, string reason, Action<string> log)
    {
        log($"rejected {ctx.Request.Method} {ctx.Request.Path} from {ctx.Connection.RemoteIpAddress}: {reason}");
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        await ctx.Response.WriteAsync($"Rejected: {reason}.\n");
    }

    /// <summary>A Kestrel host on <paramref name="listen"/> (HOST:PORT) that refuses bodies over <paramref name="maxRequestBytes"/>, without logging or a Server header.</summary>
    public static WebApplication Create(string listen, int maxRequestBytes)
    {
        var endpoint = ParseEndpoint(listen);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(endpoint);
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = maxRequestBytes;
        });
        return builder.Build();
    }

    public static IPEndPoint ParseEndpoint(string listen)
    {
        int colon = listen.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(listen.AsSpan(colon + 1), out int port) || port is < 0 or > 65535)
            throw new ColdmindException($"A listen address is HOST:PORT (e.g. 127.0.0.1:8080), not '{listen}'.");
        string host = listen[..colon].Trim('[', ']');
        var ip = host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(host, out var parsed) ? parsed : throw new ColdmindException($"Listen address '{listen}': '{host}' is not an IP address (or localhost).");
        return new IPEndPoint(ip, port);
    }

    /// <summary>The body, or null when it is longer than <paramref name="limit"/> (read no further than that).</summary>
    public static async Task<byte[]?> ReadBounded(HttpRequest request, int limit)
    {
        if (request.ContentLength > limit) return null;
        var buffer = new MemoryStream();
        var chunk = new byte[8192];
        try
        {
            int n;
            while ((n = await request.Body.ReadAsync(chunk)) > 0)
            {
                if (buffer.Length + n > limit) return null;
                buffer.Write(chunk, 0, n);
            }
        }
        catch (BadHttpRequestException) { return null; }
        return buffer.ToArray();
    }
}
