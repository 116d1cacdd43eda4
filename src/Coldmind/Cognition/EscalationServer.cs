using System.Net;
using System.Text.Json;
using Coldmind.Network;
using Coldmind.Runtime;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Coldmind.Cognition;

/// <summary>
/// The cloud side of escalation (`coldmind serve`): a classifier behind Kestrel.
/// <code>
/// POST /v1/classify   body: a <see cref="Payload"/> request → the top-k reply
/// GET  /v1/model      → {"name", "inputs", "classes"}
/// </code>
/// Every request must carry the shared key's signature (<see cref="MessageAuth"/>), every reply carries one bound
/// to its request. Bodies over the bound are refused before they are read in full, malformed payloads get 400 with
/// the reason; each rejection is logged and the server stays up.
/// </summary>
public sealed class EscalationServer : IAsyncDisposable
{
    public const string ClassifyPath = "/v1/classify", ModelPath = "/v1/model";

    private readonly WebApplication _app;
    private long _served, _rejected;

    /// <summary>Where it listens (the port chosen when 0 was asked for).</summary>
    public Uri Address => new(_app.Urls.First());
    public long Served => Interlocked.Read(ref _served);
    public long Rejected => Interlocked.Read(ref _rejected);

    /// <summary>Served and Rejected on the <c>Coldmind.Cognition</c> meter, for dotnet-counters and other listeners.</summary>
    private readonly System.Diagnostics.Metrics.Meter _meter = new("Coldmind.Cognition");

    private EscalationServer(WebApplication app)
    {
        _app = app;
        _meter.CreateObservableCounter("coldmind.escalation.served", () => Served, "{request}", "escalations answered");
        _meter.CreateObservableCounter("coldmind.escalation.rejected", () => Rejected, "{request}", "requests refused");
    }

    /// <param name="listen">HOST:PORT, HOST an IP address or localhost; port 0 picks a free one</param>
    public static async Task<EscalationServer> StartAsync(ClassifierModel model, float temperature, string listen, MessageAuth auth, int maxRequestBytes, Action<string> log)
    {
        var app = CreateHost(listen, maxRequestBytes);
        var gate = new Lock(); // the training engine's no-grad mode is per process, so a CNN runs one request at a time
        var server = new EscalationServer(app); // before the first request can arrive: the handlers count on it

        Task Reject(HttpContext ctx, int status, string reason)
        {
            Interlocked.Increment(ref server._rejected);
            return Refuse(ctx, status, reason, log);
        }

        app.MapPost(ClassifyPath, async (HttpContext ctx) =>
        {
            var body = await ReadBounded(ctx.Request, maxRequestBytes);
            if (body == null)
            {
                await Reject(ctx, StatusCodes.Status413PayloadTooLarge, $"request body over {maxRequestBytes} bytes");
                return;
            }
            string? header = ctx.Request.Headers[MessageAuth.Header];
            if (!auth.Verify(header, $"POST {ClassifyPath}", body, out string reason))
            {
                await Reject(ctx, StatusCodes.Status401Unauthorized, reason);
                return;
            }
            byte[] reply;
            try
            {
                lock (gate) reply = LocalCloud.Answer(model, temperature, body);
            }
            catch (PayloadException e)
            {
                await Reject(ctx, StatusCodes.Status400BadRequest, e.Message);
                return;
            }
            Interlocked.Increment(ref server._served);
            ctx.Response.Headers[MessageAuth.Header] = auth.Sign(ReplyContext(header!), reply);
            ctx.Response.ContentType = "application/octet-stream";
            await ctx.Response.Body.WriteAsync(reply);
        });
        app.MapGet(ModelPath, async (HttpContext ctx) =>
        {
            string? header = ctx.Request.Headers[MessageAuth.Header];
            if (!auth.Verify(header, $"GET {ModelPath}", [], out string reason))
            {
                await Reject(ctx, StatusCodes.Status401Unauthorized, reason);
                return;
            }
            var json = JsonSerializer.SerializeToUtf8Bytes(new { name = model.Name, inputs = model.Inputs, classes = model.Classes });
            ctx.Response.Headers[MessageAuth.Header] = auth.Sign(ReplyContext(header!), json);
            ctx.Response.ContentType = "application/json";
            await ctx.Response.Body.WriteAsync(json);
        });
        try { await app.StartAsync(); }
        catch (IOException e) { throw new ColdmindException($"Cannot listen on {listen}: {e.Message}"); }
        return server;
    }

    /// <summary>What a reply's signature covers: the request's own signature, so a reply cannot be replayed for another request.</summary>
    public static string ReplyContext(string requestAuth) => "reply " + requestAuth;

    public async ValueTask DisposeAsync()
    {
        _meter.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>Answers <paramref name="status"/> with <paramref name="reason"/> as one line of text, and logs it with the request and its sender.</summary>
    public static async Task Refuse(HttpContext ctx, int status, string reason, Action<string> log)
    {
        log($"rejected {ctx.Request.Method} {ctx.Request.Path} from {ctx.Connection.RemoteIpAddress}: {reason}");
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        await ctx.Response.WriteAsync($"Rejected: {reason}.\n");
    }

    /// <summary>A Kestrel host on <paramref name="listen"/> (HOST:PORT) that refuses bodies over <paramref name="maxRequestBytes"/>, without logging or a Server header.</summary>
    public static WebApplication CreateHost(string listen, int maxRequestBytes)
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
            throw new ColdmindException($"--listen takes HOST:PORT (e.g. 127.0.0.1:8080), got '{listen}'.");
        string host = listen[..colon].Trim('[', ']');
        var ip = host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(host, out var parsed) ? parsed : throw new ColdmindException($"--listen: '{host}' is not an IP address (or localhost).");
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
