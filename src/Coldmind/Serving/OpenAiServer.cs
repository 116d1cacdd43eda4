using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Coldmind.Cognition;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Coldmind.Serving;

/// <summary>Where and how an <see cref="OpenAiServer"/> listens.</summary>
public sealed record OpenAiServerSettings
{
    /// <summary>HOST:PORT (port 0: any free port).</summary>
    public string Listen { get; init; } = "127.0.0.1:8080";
    /// <summary>When set, every /v1 request must carry <c>Authorization: Bearer KEY</c>.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Larger bodies are refused (413) before they are read in full.</summary>
    public int MaxRequestBytes { get; init; } = 1 << 20;
}

/// <summary>
/// An OpenAI-compatible HTTP server over a <see cref="ColdmindChatClient"/>, on Kestrel as <see cref="EscalationServer"/> hosts it:
/// <code>
/// POST /v1/chat/completions   messages → chat.completion, or chat.completion.chunk events (stream: true)
/// POST /v1/completions        prompt → text_completion (streamed the same way)
/// GET  /v1/models             the one model
/// GET  /health                {"status": "ok", slots and queue}
/// GET  /metrics               the <see cref="ServingMetrics"/> as Prometheus text
/// </code>
/// Errors use OpenAI's shape, <c>{"error": {"message", "type", "param", "code"}}</c>: 400 for a bad request, 401 for a
/// missing or wrong key, 404, 413 for a body over the bound, 503 when the queue is full. A client that disconnects
/// cancels its generation, which frees its slot at the next token.
/// </summary>
public sealed class OpenAiServer : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.Never };
    private readonly WebApplication _app;

    public Uri Address => new(_app.Urls.First());

    private OpenAiServer(WebApplication app) => _app = app;

    public static async Task<OpenAiServer> StartAsync(ColdmindChatClient client, OpenAiServerSettings settings, Action<string> log)
    {
        if (settings.MaxRequestBytes < 1024) throw new ColdmindException($"--max-request-bytes must be at least 1024, got {settings.MaxRequestBytes}.");
        if (settings.ApiKey is { Length: 0 }) throw new ColdmindException("--api-key must not be empty.");
        var app = EscalationServer.CreateHost(settings.Listen, settings.MaxRequestBytes);
        byte[]? key = settings.ApiKey == null ? null : Encoding.UTF8.GetBytes("Bearer " + settings.ApiKey);

        app.Use(async (ctx, next) =>
        {
            if (key != null && ctx.Request.Path.StartsWithSegments("/v1")
                && !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(ctx.Request.Headers.Authorization.ToString()), key))
            {
                client.Metrics.Rejection();
                await Error(ctx, 401, "Invalid or missing API key (Authorization: Bearer KEY).", "invalid_request_error", "invalid_api_key", log);
                return;
            }
            await next(ctx);
        });
        app.MapGet("/health", (HttpContext ctx) => Write(ctx, 200, new
        {
            status = "ok", slots = client.Settings.Parallel, slots_processing = client.BusySlots,
            slots_idle = client.Settings.Parallel - client.BusySlots, queued = client.Queued, kv_caches = client.SessionsCreated,
        }));
        app.MapGet("/metrics", async (HttpContext ctx) =>
        {
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await ctx.Response.WriteAsync(client.Metrics.ToPrometheus());
        });
        app.MapGet("/v1/models", (HttpContext ctx) => Write(ctx, 200, new
        {
            @object = "list",
            data = new[] { new { id = client.ModelId, @object = "model", created = Created(), owned_by = "coldmind" } },
        }));
        app.MapPost("/v1/chat/completions", ctx => Complete(ctx, client, settings, chat: true, log));
        app.MapPost("/v1/completions", ctx => Complete(ctx, client, settings, chat: false, log));
        app.MapFallback((HttpContext ctx) =>
            Error(ctx, 404, $"No route {ctx.Request.Method} {ctx.Request.Path}.", "invalid_request_error", "not_found", log));
        try { await app.StartAsync(); }
        catch (IOException e) { throw new ColdmindException($"Cannot listen on {settings.Listen}: {e.Message}"); }
        return new OpenAiServer(app);
    }

    private static long Created() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private static async Task Complete(HttpContext ctx, ColdmindChatClient client, OpenAiServerSettings settings, bool chat, Action<string> log)
    {
        var body = await EscalationServer.ReadBounded(ctx.Request, settings.MaxRequestBytes);
        if (body == null)
        {
            client.Metrics.Rejection();
            await Error(ctx, 413, $"The request body is over {settings.MaxRequestBytes} bytes.", "invalid_request_error", "request_too_large", log);
            return;
        }
        var abort = ctx.RequestAborted;
        IAsyncEnumerator<CompletionChunk>? chunks = null;
        OpenAiRequest request;
        try
        {
            request = OpenAiRequest.Parse(body, chat);
            var prompt = chat ? client.EncodeChat(request.Messages!) : client.EncodePrompt(request.Prompt!);
            chunks = client.GenerateAsync(prompt, client.ToCompletionOptions(request.Options), abort).GetAsyncEnumerator(abort);
            await chunks.MoveNextAsync(); // checks the bounds and waits for a slot before any byte of the answer is sent
        }
        catch (Exception e) when (e is ColdmindException or OperationCanceledException)
        {
            if (chunks != null) await chunks.DisposeAsync();
            if (e is OperationCanceledException) return; // the client left while queued
            if (chunks == null) client.Metrics.Rejection(); // the generation counts its own refusals
            await (e is ServerBusyException
                ? Error(ctx, 503, e.Message, "server_error", "overloaded", log)
                : Error(ctx, 400, e.Message, "invalid_request_error", null, log));
            return;
        }
        await using var _ = chunks;
        string id = ColdmindChatClient.NewId(chat ? "chatcmpl" : "cmpl");
        long created = Created();
        string kind = chat ? "chat.completion" : "text_completion";
        try
        {
            if (request.Stream) await Stream(ctx, chunks, chat, request.IncludeUsage, id, created, client.ModelId, abort);
            else
            {
                var text = new StringBuilder();
                CompletionResult? result;
                while ((result = chunks.Current.Result) == null)
                {
                    text.Append(chunks.Current.Text);
                    await chunks.MoveNextAsync();
                }
                object choice = chat
                    ? new { index = 0, message = new { role = "assistant", content = text.ToString() }, logprobs = (object?)null, finish_reason = result.FinishReason }
                    : new { index = 0, text = text.ToString(), logprobs = (object?)null, finish_reason = result.FinishReason };
                await Write(ctx, 200, new { id, @object = kind, created, model = client.ModelId, choices = new[] { choice }, usage = Usage(result) });
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested) { } // the client left: its slot is free again
    }

    /// <summary>Server-sent events: one chunk per decoded piece, then the finish reason, usage if asked, and [DONE].</summary>
    private static async Task Stream(HttpContext ctx, IAsyncEnumerator<CompletionChunk> chunks, bool chat, bool includeUsage,
        string id, long created, string model, CancellationToken abort)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        string kind = chat ? "chat.completion.chunk" : "text_completion";
        async Task Event(object payload)
        {
            await ctx.Response.WriteAsync("data: " + JsonSerializer.Serialize(payload, Json) + "\n\n", abort);
            await ctx.Response.Body.FlushAsync(abort);
        }
        object Choice(string? text, string? finish, bool first) => chat
            ? new { index = 0, delta = first ? new { role = "assistant", content = text } : text == null ? new object() : new { content = text },
                logprobs = (object?)null, finish_reason = finish }
            : new { index = 0, text = text ?? "", logprobs = (object?)null, finish_reason = finish };
        if (chat) await Event(new { id, @object = kind, created, model, choices = new[] { Choice("", null, true) } });
        CompletionResult? result;
        while ((result = chunks.Current.Result) == null)
        {
            if (chunks.Current.Text.Length > 0)
                await Event(new { id, @object = kind, created, model, choices = new[] { Choice(chunks.Current.Text, null, false) } });
            await chunks.MoveNextAsync();
        }
        await Event(new { id, @object = kind, created, model, choices = new[] { Choice(chat ? null : "", result.FinishReason, false) } });
        if (includeUsage) await Event(new { id, @object = kind, created, model, choices = Array.Empty<object>(), usage = Usage(result) });
        await ctx.Response.WriteAsync("data: [DONE]\n\n", abort);
    }

    private static object Usage(CompletionResult r) => new
    {
        prompt_tokens = r.PromptTokens, completion_tokens = r.CompletionTokens, total_tokens = r.PromptTokens + r.CompletionTokens,
    };

    private static async Task Write(HttpContext ctx, int status, object payload)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(JsonSerializer.Serialize(payload, Json));
    }

    /// <summary>An error in OpenAI's shape, logged with the request and its sender.</summary>
    private static Task Error(HttpContext ctx, int status, string message, string type, string? code, Action<string> log)
    {
        log($"{status} {ctx.Request.Method} {ctx.Request.Path} from {ctx.Connection.RemoteIpAddress}: {message}");
        return Write(ctx, status, new { error = new { message, type, param = (string?)null, code } });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
