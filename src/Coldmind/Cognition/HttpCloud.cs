using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text.Json;
using Coldmind.Network;

namespace Coldmind.Cognition;

/// <summary>
/// The edge's client of `coldmind serve`. Signs every request, checks every reply's signature, and when the
/// server cannot be reached (refused, timed out, or a reply that fails its check) returns an unanswered reply, so
/// the edge answers alone, and does not try again for <see cref="RetryAfter"/>: connectivity independence.
/// </summary>
public sealed class HttpCloud : ICloud, IDisposable
{
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(1);

    private readonly HttpClient _http;
    private readonly MessageAuth _auth;
    private readonly Stopwatch _sinceFailure = new();

    public Uri Server { get; }
    public int Inputs { get; }
    public int Classes { get; }
    public string ModelName { get; }
    public long Failures { get; private set; }
    /// <summary>HTTP/1.1 request line and headers of the last request, beyond the payload: what the framing costs.</summary>
    public long RequestOverheadBytes { get; private set; }
    public event Action<string>? OnFailure;

    /// <summary>Connects and reads the served model's shape; the server must be up at the start.</summary>
    public HttpCloud(Uri server, MessageAuth auth, TimeSpan timeout)
    {
        (Server, _auth) = (server, auth);
        _http = new HttpClient { BaseAddress = server, Timeout = timeout };
        using var request = new HttpRequestMessage(HttpMethod.Get, EscalationServer.ModelPath);
        string signature = auth.Sign("GET", EscalationServer.ModelPath, EscalationServer.Identity(server), []);
        request.Headers.Add(MessageAuth.Header, signature);
        HttpResponseMessage response;
        try { response = _http.Send(request); }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        { throw new ColdmindException($"Cannot reach the cloud at {server}: {e.Message}"); }
        using (response)
        {
            var body = response.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult();
            if (!response.IsSuccessStatusCode) throw new ColdmindException($"The cloud at {server} refused: {(int)response.StatusCode} {System.Text.Encoding.UTF8.GetString(body).Trim()}");
            if (!VerifyReply(response, signature, body, out string reason)) throw new ColdmindException($"The cloud at {server} sent a reply that fails its check: {reason}.");
            var info = JsonDocument.Parse(body).RootElement;
            (ModelName, Inputs, Classes) = (info.GetProperty("name").GetString() ?? "?", info.GetProperty("inputs").GetInt32(), info.GetProperty("classes").GetInt32());
        }
    }

    public CloudReply Ask(byte[] payload)
    {
        if (_sinceFailure.IsRunning && _sinceFailure.Elapsed < RetryAfter) return CloudReply.Unanswered(0);
        using var request = new HttpRequestMessage(HttpMethod.Post, EscalationServer.ClassifyPath) { Content = new ByteArrayContent(payload) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        string signature = _auth.Sign("POST", EscalationServer.ClassifyPath, EscalationServer.Identity(Server), payload);
        request.Headers.Add(MessageAuth.Header, signature);
        RequestOverheadBytes = $"POST {EscalationServer.ClassifyPath} HTTP/1.1\r\nHost: {Server.Authority}\r\n".Length
            + request.Headers.Concat(request.Content.Headers).Sum(h => h.Key.Length + 4 + string.Join(", ", h.Value).Length) + $"Content-Length: {payload.Length}\r\n\r\n".Length;
        try
        {
            using var response = _http.Send(request);
            var body = response.Content.ReadAsByteArrayAsync().GetAwaiter().GetResult();
            if (!response.IsSuccessStatusCode)
                throw new ColdmindException($"The cloud at {Server} refused a request: {(int)response.StatusCode} {System.Text.Encoding.UTF8.GetString(body).Trim()}");
            if (!VerifyReply(response, signature, body, out string reason)) return Fail($"reply failed its check: {reason}", payload.Length);
            _sinceFailure.Reset();
            return LocalCloud.Read(body, payload.Length, Classes);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
        {
            return Fail(e.Message, payload.Length);
        }
        catch (PayloadException e)
        {
            return Fail($"malformed reply: {e.Message}", payload.Length);
        }
    }

    private CloudReply Fail(string reason, long sent)
    {
        Failures++;
        _sinceFailure.Restart();
        OnFailure?.Invoke(reason);
        return CloudReply.Unanswered(sent);
    }

    private bool VerifyReply(HttpResponseMessage response, string requestSignature, byte[] body, out string reason) =>
        _auth.VerifyReply(response.Headers.TryGetValues(MessageAuth.Header, out var v) ? v.FirstOrDefault() : null, requestSignature,
            EscalationServer.Identity(Server), body, out reason);

    public void Dispose() => _http.Dispose();
}
