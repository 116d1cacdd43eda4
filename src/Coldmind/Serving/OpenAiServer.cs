using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Coldmind.Network;
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
/// An OpenAI-compatible HTTP server over a <see cref="ColdmindChatClient"/>, on the Kestrel host
/// <see cref="HttpHost.Create"/> makes:
/// <code>
/// POST /v1/chat/completions   messages → chat.completion, or chat.completion.chunk events (stream: true)
/// POST /v1/completions        prompt → text_completion (streamed the same way)
/// GET  /v1/models             the one model
/// GET  /health                {"status": "ok", slots and queue}
/// GET  /metrics               the <see cref="ServingMetrics"/> as Prometheus text
/// </code>
/// Errors use OpenAI's shape, <c>{"error": {"message", "type", "param", "code"}}</c>: 400 for a bad request, 401 for
/// a missing or wrong key, 404, 413 for a body over the bound, 503 when the queue is full. A client that disconnects
/// cancels its generation, which frees its slot at the next token.
/// </summary>
public sealed class OpenAiServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    public Uri Address => new(_app.Urls.First());

    private OpenAiServer(WebApplication app) => _app = app;

    public static async Task<OpenAiServer> StartAsync(ColdmindChatClient client, OpenAiServerSettings settings,
        Action<string> log)
    {
        if (settings.MaxRequestBytes < 1024)
            throw new ColdmindException($"--max-request-bytes must be at least 1024, got {settings.MaxRequestBytes}.");
        if (settings.ApiKey is { Length: 0 }) throw new ColdmindException("--api-key must not be empty.");
        var app = HttpHost.Create(settings.Listen, settings.MaxRequestBytes);
        byte[]? key = settings.ApiKey == null ? null : Encoding.UTF8.GetBytes("Bearer " + settings.ApiKey);

        app.Use(async (ctx, next) =>
        {
            byte[] given = Encoding.UTF8.GetBytes(ctx.Request.Headers.Authorization.ToString());
            bool refused = key != null && !CryptographicOperations.FixedTimeEquals(given, key);
            if (refused && ctx.Request.Path.StartsWithSegments("/v1"))
            {
                client.Metrics.Rejection();
                await Error(ctx, 401, "Invalid or missing API key (Authorization: Bearer KEY).", "invalid_api_key",
                    log);
                return;
            }
            await next(ctx);
        });
        app.MapGet("/health", (HttpContext ctx) => Write(ctx, 200, new
        {
            status = "ok", slots = client.Settings.Parallel, slots_processing = client.BusySlots,
            slots_idle = client.Settings.Parallel - client.BusySlots, queued = client.Queued,
            kv_caches = client.SessionsCreated,
        }));
        app.MapGet("/metrics", async (HttpContext ctx) =>
        {
            ctx.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await ctx.Response.WriteAsync(client.Metrics.ToPrometheus());
        });
        app.MapGet("/v1/models", (HttpContext ctx) => Write(ctx, 200, new
        {
            @object = "list",
            data = new[] { new { id = client.ModelId, @object = "model", created = Now(), owned_by = "coldmind" } },
        }));
        app.MapPost("/v1/chat/completions", ctx => Complete(ctx, client, settings.MaxRequestBytes, chat: true, log));
        app.MapPost("/v1/completions", ctx => Complete(ctx, client, settings.MaxRequestBytes, chat: false, log));
        app.MapFallback((HttpContext ctx) =>
            Error(ctx, 404, $"No route {ctx.Request.Method} {ctx.Request.Path}.", "not_found", log));
        try { await app.StartAsync(); }
        catch (IOException e) { throw new ColdmindException($"Cannot listen on {settings.Listen}: {e.Message}"); }
        return new OpenAiServer(app);
    }

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    private static async Task Complete(HttpContext ctx, ColdmindChatClient client, int maxBytes, bool chat,
        Action<string> log)
    {
        var body = await HttpHost.ReadBounded(ctx.Request, maxBytes);
        if (body == null)
        {
            client.Metrics.Rejection();
            await Error(ctx, 413, $"The request body is over {maxBytes} bytes.", "request_too_large", log);
            return;
        }
        var abort = ctx.RequestAborted;
        IAsyncEnumerator<CompletionChunk>? chunks = null;
        OpenAiRequest request;
        try
        {
            request = OpenAiRequest.Parse(body, chat);
            var prompt = chat ? client.EncodeChat(request.Messages!) : client.EncodePrompt(request.Prompt!);
            chunks = client.GenerateAsync(prompt, client.ToCompletionOptions(request.Options), abort)
                .GetAsyncEnumerator(abort);
            await chunks.MoveNextAsync(); // checks the bounds and waits for a slot before a byte of the answer is sent
        }
        catch (Exception e) when (e is ColdmindException or OperationCanceledException)
        {
            if (chunks != null) await chunks.DisposeAsync();
            if (e is OperationCanceledException) return; // the client left while queued
            if (chunks == null) client.Metrics.Rejection(); // the generation counts its own refusals
            await (e is ServerBusyException
                ? Error(ctx, 503, e.Message, "overloaded", log, "server_error")
                : Error(ctx, 400, e.Message, null, log));
            return;
        }
        await using var _ = chunks;
        var answer = new Answer(ColdmindChatClient.NewId(chat ? "chatcmpl" : "cmpl"), Now(), client.ModelId, chat);
        try
        {
            if (request.Stream) await Stream(ctx, chunks, answer, request.IncludeUsage, abort);
            else
            {
                var text = new StringBuilder();
                CompletionResult? result;
                while ((result = chunks.Current.Result) == null)
                {
                    text.Append(chunks.Current.Text);
                    await chunks.MoveNextAsync();
                }
                string content = text.ToString(), finish = result.FinishReason;
                object choice = chat
                    ? new { index = 0, message = new { role = "assistant", content }, logprobs = (object?)null,
                        finish_reason = finish }
                    : new { index = 0, text = content, logprobs = (object?)null, finish_reason = finish };
                await Write(ctx, 200, answer.Body([choice], Usage(result), chunk: false));
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested) { } // the client left: its slot is free
    }

    /// <summary>What every object of one answer repeats: its id, creation time, model and kind.</summary>
    private sealed record Answer(string Id, long Created, string Model, bool Chat)
    {
        public object Body(object[] choices, object? usage, bool chunk) => new
        {
            id = Id, @object = Chat ? chunk ? "chat.completion.chunk" : "chat.completion" : "text_completion",
            created = Created, model = Model, choices, usage,
        };
    }

    /// <summary>Server-sent events: a chunk per ready text, the finish reason, usage if asked, and [DONE].</summary>
    private static async Task Stream(HttpContext ctx, IAsyncEnumerator<CompletionChunk> chunks, Answer answer,
        bool includeUsage, CancellationToken abort)
    {
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "text/event-stream";
        ctx.Response.Headers.CacheControl = "no-cache";
        async Task Event(object[] choices, object? usage = null)
        {
            string json = JsonSerializer.Serialize(answer.Body(choices, usage, chunk: true));
            await ctx.Response.WriteAsync("data: " + json + "\n\n", abort);
            await ctx.Response.Body.FlushAsync(abort);
        }
        // a chat chunk carries a delta (the role first, then content, empty at the end); a completion chunk its text
        object[] Choice(string? text, string? finish, bool first = false)
        {
            object delta = first ? new { role = "assistant", content = text }
                : text == null ? new object() : new { content = text };
            return [answer.Chat
                ? new { index = 0, delta, logprobs = (object?)null, finish_reason = finish }
                : new { index = 0, text = text ?? "", logprobs = (object?)null, finish_reason = finish }];
        }
        if (answer.Chat) await Event(Choice("", null, first: true));
        CompletionResult? result;
        while ((result = chunks.Current.Result) == null)
        {
            if (chunks.Current.Text.Length > 0) await Event(Choice(chunks.Current.Text, null));
            await chunks.MoveNextAsync();
        }
        await Event(Choice(null, result.FinishReason));
        if (includeUsage) await Event([], Usage(result));
        await ctx.Response.WriteAsync("data: [DONE]\n\n", abort);
    }

    private static object Usage(CompletionResult r) => new
    {
        prompt_tokens = r.PromptTokens, completion_tokens = r.CompletionTokens,
        total_tokens = r.PromptTokens + r.CompletionTokens,
    };

    private static async Task Write(HttpContext ctx, int status, object payload)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        await ctx.Response.WriteAsync(JsonSerializer.Serialize(payload));
    }

    /// <summary>An error in OpenAI's shape, logged with the request and its sender.</summary>
    private static Task Error(HttpContext ctx, int status, string message, string? code, Action<string> log,
        string type = "invalid_request_error")
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
