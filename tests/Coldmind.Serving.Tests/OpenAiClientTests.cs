using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.AI;
using OpenAI;
using Xunit;

namespace Coldmind.Serving.Tests;

/// <summary>`coldmind serve MODEL.gguf` driven by the official OpenAI .NET client, as an application uses it.</summary>
public class OpenAiClientTests(Models models) : IClassFixture<Models>
{
    private static IChatClient Client(ServerProcess server, string key = "unused") =>
        new OpenAIClient(new ApiKeyCredential(key),
                new OpenAIClientOptions { Endpoint = new Uri(server.Address, "v1") })
            .GetChatClient("any").AsIChatClient();

    private static async Task<JsonElement> Get(HttpClient http, Uri address, string path)
    {
        using var json = JsonDocument.Parse(await http.GetStringAsync(new Uri(address, path)));
        return json.RootElement.Clone();
    }

    /// <summary>The value of <paramref name="name"/> in Prometheus text.</summary>
    private static double Metric(string text, string name) => double.Parse(text.Split('\n')
        .Single(l => l.StartsWith(name + " ", StringComparison.Ordinal))[(name.Length + 1)..],
            System.Globalization.CultureInfo.InvariantCulture);

    [Theory]
    [InlineData("stories260K")]
    [InlineData("train-lm")]
    public async Task Streaming_and_whole_greedy_chat_equal_coldmind_run_on_the_same_prompt(string name)
    {
        using var server = new ServerProcess(models[name]);
        var chat = Client(server);
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 40 };
        ChatMessage[] messages = [new(ChatRole.User, "Tell me a story")];

        var whole = await chat.GetResponseAsync(messages, options);
        var streamed = new StringBuilder();
        int updates = 0;
        UsageDetails? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var update in chat.GetStreamingResponseAsync(messages, options))
        {
            streamed.Append(update.Text);
            if (update.Text.Length > 0) updates++;
            usage = update.Contents.OfType<UsageContent>().FirstOrDefault()?.Details ?? usage;
            finish = update.FinishReason ?? finish;
        }
        // the plain template (neither model has one): what `coldmind chat` writes for this turn
        var run = Cli.RunGreedy(models[name], "User: Tell me a story\nAssistant:", 40);
        Assert.Equal(run.Text, whole.Text);
        Assert.Equal(run.Text, streamed.ToString());
        Assert.True(updates > 1, $"{updates} text updates: the answer was not streamed");
        Assert.Equal(run.PromptTokens, whole.Usage!.InputTokenCount);
        Assert.Equal(run.Tokens, whole.Usage.OutputTokenCount);
        Assert.Equal(run.PromptTokens, usage!.InputTokenCount);
        Assert.Equal(run.Tokens == 40 ? ChatFinishReason.Length : ChatFinishReason.Stop, finish);
    }

    [Theory]
    [InlineData("stories260K")]
    [InlineData("train-lm")]
    public async Task Greedy_completions_equal_coldmind_run_with_the_same_repeat_penalty(string name)
    {
        using var server = new ServerProcess(models[name]);
        using var http = new HttpClient();
        foreach (float penalty in new[] { 1f, 1.3f })
        {
            var body = JsonSerializer.Serialize(new { prompt = "Once upon a time", max_tokens = 48, temperature = 0,
                repeat_penalty = penalty });
            using var reply = await http.PostAsync(new Uri(server.Address, "v1/completions"),
                new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, reply.StatusCode);
            using var json = JsonDocument.Parse(await reply.Content.ReadAsStringAsync());
            var run = Cli.RunGreedy(models[name], "Once upon a time", 48, penalty);
            Assert.Equal(run.Text, json.RootElement.GetProperty("choices")[0].GetProperty("text").GetString());
            Assert.Equal(run.PromptTokens,
                json.RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
            Assert.Equal(run.Tokens, json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        }
    }

    [Fact]
    public async Task A_stop_sequence_cuts_the_answer_before_it_streamed_or_not()
    {
        using var server = new ServerProcess(models.Stories);
        var chat = Client(server);
        ChatMessage[] messages = [new(ChatRole.User, "Hi")];
        var greedy = new ChatOptions { Temperature = 0, MaxOutputTokens = 60 };
        string full = (await chat.GetResponseAsync(messages, greedy)).Text;
        string stop = full.Substring(full.Length / 2, 3); // somewhere in the middle, maybe across tokens
        string expected = full[..full.IndexOf(stop, StringComparison.Ordinal)];
        var options = greedy.Clone();
        options.StopSequences = [stop, "never appears"];
        var cut = await chat.GetResponseAsync(messages, options);
        Assert.Equal(expected, cut.Text);
        Assert.Equal(ChatFinishReason.Stop, cut.FinishReason);
        var streamed = new StringBuilder();
        await foreach (var update in chat.GetStreamingResponseAsync(messages, options)) streamed.Append(update.Text);
        Assert.Equal(expected, streamed.ToString());
    }

    [Fact]
    public async Task Sixteen_concurrent_clients_are_all_answered_in_bounded_memory_and_cancelled_ones_free_their_slot()
    {
        // the leavers ask for 4 000 tokens, so that each is still generating when its client leaves
        using var server = new ServerProcess(models.Stories, "--parallel", "4", "--queue", "32", "--ctx", "4100",
            "--max-tokens", "4000");
        var chat = Client(server);
        using var http = new HttpClient();
        long idle = server.PeakResidentBytes();
        async Task<string> Ask(int i)
        {
            var text = new StringBuilder();
            var options = new ChatOptions { Temperature = 0.8f, Seed = i, MaxOutputTokens = 64 };
            ChatMessage[] ask = [new(ChatRole.User, $"Story {i}")];
            await foreach (var u in chat.GetStreamingResponseAsync(ask, options)) text.Append(u.Text);
            return text.ToString();
        }
        async Task<bool> AskAndLeave(int i)
        {
            using var leave = new CancellationTokenSource();
            var options = new ChatOptions { Temperature = 0.8f, Seed = i, MaxOutputTokens = 4000 };
            try
            {
                await foreach (var u in chat.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Go")], options,
                    leave.Token))
                    if (u.Text.Length > 0) leave.Cancel();
            }
            catch (OperationCanceledException) { return true; }
            return false;
        }
        var answers = Enumerable.Range(0, 16).Select(Ask).ToArray();
        var leavers = Enumerable.Range(100, 4).Select(AskAndLeave).ToArray();
        Assert.All(await Task.WhenAll(answers), a => Assert.False(string.IsNullOrWhiteSpace(a)));
        Assert.All(await Task.WhenAll(leavers), Assert.True);

        JsonElement health = default;
        for (int attempt = 0; attempt < 100; attempt++) // the server sees each disconnect at its next token
        {
            health = await Get(http, server.Address, "health");
            if (health.GetProperty("slots_processing").GetInt32() == 0) break;
            await Task.Delay(100);
        }
        Assert.Equal(0, health.GetProperty("slots_processing").GetInt32());
        Assert.Equal(0, health.GetProperty("queued").GetInt32());
        Assert.InRange(health.GetProperty("kv_caches").GetInt32(), 1, 4); // one cache a slot, not one a client
        string metrics = await http.GetStringAsync(new Uri(server.Address, "metrics"));
        Assert.Equal(16, Metric(metrics, "coldmind_requests_total"));
        Assert.Equal(4, Metric(metrics, "coldmind_cancelled_total"));
        long peak = server.PeakResidentBytes();
        Assert.True(peak - idle < 200L << 20, $"resident memory grew {(peak - idle) >> 20} MB under 20 clients");
    }

    [Fact]
    public async Task A_client_that_disconnects_stops_its_generation()
    {
        // a generation of 20 000 tokens would hold the only slot for many seconds; the disconnect must end it at once
        using var server = new ServerProcess(models.Stories, "--ctx", "20100", "--max-tokens", "20000");
        using var http = new HttpClient();
        var body = JsonSerializer.Serialize(new { prompt = "Once", max_tokens = 20000, stream = true });
        using (var leave = new CancellationTokenSource())
        using (var request = new HttpRequestMessage(HttpMethod.Post, new Uri(server.Address, "v1/completions")))
        {
            request.Content = new StringContent(body, Encoding.UTF8, "application/json");
            using var reply = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, leave.Token);
            using var reader = new StreamReader(await reply.Content.ReadAsStreamAsync(leave.Token));
            Assert.StartsWith("data: ", await reader.ReadLineAsync(leave.Token), StringComparison.Ordinal);
        } // disposing the response closes the connection
        JsonElement health = default;
        for (int attempt = 0; attempt < 50; attempt++)
        {
            health = await Get(http, server.Address, "health");
            if (health.GetProperty("slots_idle").GetInt32() == 1) break;
            await Task.Delay(100);
        }
        Assert.Equal(1, health.GetProperty("slots_idle").GetInt32());
        string metrics = await http.GetStringAsync(new Uri(server.Address, "metrics"));
        Assert.Equal(1, Metric(metrics, "coldmind_cancelled_total"));
        Assert.Equal(0, Metric(metrics, "coldmind_requests_total"));
    }

    [Fact]
    public async Task Keys_bounds_and_bad_requests_get_openai_errors_with_their_status()
    {
        using var server = new ServerProcess(models.Stories, "--api-key", "s3cret", "--max-request-bytes", "4096",
            "--max-tokens", "100",
            "--max-prompt-tokens", "64");
        await Assert.ThrowsAsync<ClientResultException>(() => Client(server, "wrong").GetResponseAsync("Hi"));
        var ok = await Client(server, "s3cret").GetResponseAsync("Hi", new ChatOptions { MaxOutputTokens = 5 });
        Assert.Equal(5, ok.Usage!.OutputTokenCount);

        using var http = new HttpClient();
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer",
            "s3cret");
        async Task Expect(HttpStatusCode status, string path, string body, string words)
        {
            using var fresh = new HttpClient(); // a new connection: the server closes one whose body it refused unread
            fresh.DefaultRequestHeaders.Authorization = http.DefaultRequestHeaders.Authorization;
            using var reply = await fresh.PostAsync(new Uri(server.Address, path),
                new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(status, reply.StatusCode);
            using var json = JsonDocument.Parse(await reply.Content.ReadAsStringAsync());
            var error = json.RootElement.GetProperty("error");
            Assert.Contains(words, error.GetProperty("message").GetString(), StringComparison.Ordinal);
            Assert.Equal(status == HttpStatusCode.InternalServerError ? "server_error" : "invalid_request_error",
                error.GetProperty("type").GetString());
        }
        await Expect(HttpStatusCode.BadRequest, "v1/chat/completions", "{not json", "not valid JSON");
        await Expect(HttpStatusCode.BadRequest, "v1/chat/completions",
            """{"messages":[{"role":"user","content":"Hi"}],"max_tokens":101}""", "max_tokens");
        await Expect(HttpStatusCode.BadRequest, "v1/chat/completions",
            """{"messages":[{"role":"tool","content":"x"}]}""", "role 'tool'");
        await Expect(HttpStatusCode.BadRequest, "v1/chat/completions",
            """{"messages":[{"role":"user","content":"Hi"}],"n":2}""", "'n'");
        await Expect(HttpStatusCode.BadRequest, "v1/completions",
            $$"""{"prompt":"{{string.Concat(Enumerable.Repeat("Once upon a time ", 40))}}"}""", "at most 64");
        await Expect(HttpStatusCode.BadRequest, "v1/completions", """{"prompt":"Hi","temperature":-1}""",
            "temperature");
        string large = new('a', 5000);
        await Expect(HttpStatusCode.RequestEntityTooLarge, "v1/completions", $$"""{"prompt":"{{large}}"}""",
            "over 4096 bytes");
        await Expect(HttpStatusCode.NotFound, "v1/embeddings", "{}", "No route");

        using var anonymous = new HttpClient();
        var unauthorized = await anonymous.GetAsync(new Uri(server.Address, "v1/models"));
        Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync(new Uri(server.Address, "health"))).StatusCode);
        var listed = await Get(http, server.Address, "v1/models");
        Assert.Equal("stories260K.f32", listed.GetProperty("data")[0].GetProperty("id").GetString());
    }
}
