using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using System.Text.Json;
using Coldmind.Network;
using Coldmind.Runtime.Classifier;

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
    public static async Task<EscalationServer> StartAsync(ClassifierModel model, float temperature, string listen, MessageAuth keys, int maxRequestBytes, Action<string> log)
    {
        var app = HttpHost.Create(listen, maxRequestBytes);
        // the server is its address (its port, when 0 was asked for), known once it listens: requests wait for it
        var ready = new TaskCompletionSource<MessageAuth>(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new Lock(); // the training engine's no-grad mode is per process, so a CNN runs one request at a time
        var server = new EscalationServer(app); // before the first request can arrive: the handlers count on it

        Task Reject(HttpContext ctx, int status, string reason)
        {
            Interlocked.Increment(ref server._rejected);
            return HttpHost.Refuse(ctx, status, reason, log);
        }

        app.MapPost(ClassifyPath, async (HttpContext ctx) =>
        {
            var body = await HttpHost.ReadBounded(ctx.Request, maxRequestBytes);
            if (body == null)
            {
                await Reject(ctx, StatusCodes.Status413PayloadTooLarge, $"request body over {maxRequestBytes} bytes");
                return;
            }
            var auth = await ready.Task;
            string? header = ctx.Request.Headers[MessageAuth.Header];
            if (!auth.Verify(header, "POST", ClassifyPath, body, out _, out string reason))
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
            ctx.Response.Headers[MessageAuth.Header] = auth.SignReply(header!, reply);
            ctx.Response.ContentType = "application/octet-stream";
            await ctx.Response.Body.WriteAsync(reply);
        });
        app.MapGet(ModelPath, async (HttpContext ctx) =>
        {
            var auth = await ready.Task;
            string? header = ctx.Request.Headers[MessageAuth.Header];
            if (!auth.Verify(header, "GET", ModelPath, [], out _, out string reason))
            {
                await Reject(ctx, StatusCodes.Status401Unauthorized, reason);
                return;
            }
            var json = JsonSerializer.SerializeToUtf8Bytes(new { name = model.Name, inputs = model.Inputs, classes = model.Classes });
            ctx.Response.Headers[MessageAuth.Header] = auth.SignReply(header!, json);
            ctx.Response.ContentType = "application/json";
            await ctx.Response.Body.WriteAsync(json);
        });
        try { await app.StartAsync(); }
        catch (IOException e) { throw new ColdmindException($"Cannot listen on {listen}: {e.Message}"); }
        ready.SetResult(keys.As(Identity(server.Address)));
        return server;
    }

    /// <summary>A server's identity in signatures: HOST:PORT as clients address it (the port even when it is the scheme's default).</summary>
    public static string Identity(Uri address) => $"{address.Host}:{address.Port}";

    public async ValueTask DisposeAsync()
    {
        _meter.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
