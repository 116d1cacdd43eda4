using System.Text;
using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;
using Microsoft.Extensions.AI;
using Xunit;

namespace Coldmind.Serving.Tests;

/// <summary>The IChatClient in process, as a .NET application uses it.</summary>
public class ChatClientTests(Models models) : IClassFixture<Models>
{
    [Theory]
    [InlineData("stories260K")]
    [InlineData("train-lm")]
    public async Task Greedy_answers_equal_coldmind_run_with_the_options_mapped_to_the_sampler(string name)
    {
        using IChatClient chat = ColdmindChatClient.Open(models[name]);
        var options = new ChatOptions { Temperature = 0, MaxOutputTokens = 30,
            AdditionalProperties = new() { ["repeat_penalty"] = 1.3f } };
        ChatMessage[] messages = [new(ChatRole.System, "Be brief."), new(ChatRole.User, "Hello")];
        var whole = await chat.GetResponseAsync(messages, options);
        var streamed = new StringBuilder();
        await foreach (var u in chat.GetStreamingResponseAsync(messages, options)) streamed.Append(u.Text);
        var run = Cli.RunGreedy(models[name], "Be brief.\n\nUser: Hello\nAssistant:", 30, repeatPenalty: 1.3f);
        Assert.Equal(run.Text, whole.Text);
        Assert.Equal(run.Text, streamed.ToString());
        Assert.Equal(run.PromptTokens, whole.Usage!.InputTokenCount);
        Assert.Equal(ChatRole.Assistant, whole.Messages.Single().Role);
        Assert.Equal("coldmind", chat.GetService<ChatClientMetadata>()!.ProviderName);
    }

    [Fact]
    public async Task The_same_seed_gives_the_same_sampled_text_and_penalties_change_it()
    {
        using var chat = ColdmindChatClient.Open(models.Stories);
        async Task<string> Answer(ChatOptions o) => (await chat.GetResponseAsync("Once", o)).Text;
        var sampled = new ChatOptions { Temperature = 0.9f, TopP = 0.9f, TopK = 20, Seed = 7, MaxOutputTokens = 40 };
        Assert.Equal(await Answer(sampled), await Answer(sampled.Clone()));
        var greedy = new ChatOptions { Temperature = 0, MaxOutputTokens = 60 };
        var penalised = greedy.Clone();
        penalised.FrequencyPenalty = 2f;
        penalised.PresencePenalty = 2f;
        Assert.NotEqual(await Answer(greedy), await Answer(penalised));
    }

    [Fact]
    public async Task Cancelling_stops_the_generation_and_frees_the_slot_and_a_full_queue_refuses()
    {
        using var chat = ColdmindChatClient.Open(models.Stories, new ChatClientSettings { Parallel = 1, MaxQueue = 0,
            MaxTokens = 5000, ContextLength = 5100 });
        using var leave = new CancellationTokenSource();
        var options = new ChatOptions { MaxOutputTokens = 5000 };
        await using var stream = chat.GetStreamingResponseAsync([new ChatMessage(ChatRole.User, "Go")], options,
            leave.Token).GetAsyncEnumerator();
        Assert.True(await stream.MoveNextAsync());
        Assert.Equal(1, chat.BusySlots);
        // the only slot is taken and no one may wait: a second request is refused at once
        await Assert.ThrowsAsync<ServerBusyException>(() => chat.GetResponseAsync("Hi"));
        leave.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            while (await stream.MoveNextAsync()) { }
        });
        Assert.Equal(0, chat.BusySlots);
        Assert.Equal(1, chat.Metrics.Cancelled);
        Assert.Equal(0, chat.Metrics.Requests);
        var after = await chat.GetResponseAsync("Hi", new ChatOptions { MaxOutputTokens = 3 });
        Assert.Equal(3, after.Usage!.OutputTokenCount);
        Assert.Equal(1, chat.SessionsCreated); // the slot's KV cache was reused
    }

    [Fact]
    public async Task Bad_options_are_refused_with_a_clear_message()
    {
        using var chat = ColdmindChatClient.Open(models.Stories, new ChatClientSettings { MaxTokens = 100 });
        var e = await Assert.ThrowsAsync<ColdmindException>(() => chat.GetResponseAsync("Hi",
            new ChatOptions { MaxOutputTokens = 101 }));
        Assert.Contains("max_tokens", e.Message);
        e = await Assert.ThrowsAsync<ColdmindException>(() => chat.GetResponseAsync("Hi",
            new ChatOptions { TopP = 0 }));
        Assert.Contains("top-p", e.Message);
        ChatMessage[] noUser = [new(ChatRole.Assistant, "Hi")];
        e = await Assert.ThrowsAsync<ColdmindException>(() => chat.GetResponseAsync(noUser));
        Assert.Contains("user's", e.Message);
        Assert.Equal(2, chat.Metrics.Rejected); // the conversation without a user turn never reaches the generator
    }
}

public class TemplateAndStopTests
{
    [Fact]
    public void Stop_sequences_cut_at_the_earliest_match()
    {
        var stops = new StopSequences(["END", "xyz"]);
        var emitted = new StringBuilder();
        foreach (var piece in new[] { "ab", "cE", "NQ", "rxy", "zEND" }) emitted.Append(stops.Push(piece));
        Assert.True(stops.Stopped);
        Assert.Equal("abcENQr", emitted.ToString());
        Assert.Equal("", stops.Push("more"));
        var open = new StopSequences(["END"]);
        Assert.Equal("abc", open.Push("abcEN"));
        Assert.Equal("EN", open.Flush());
    }

    [Fact]
    public void Chat_templates_render_a_conversation_as_coldmind_chat_leaves_it_in_the_cache()
    {
        var chatml = ChatTemplate.Detect("{% for m in messages %}<|im_start|>{{m.role}}...");
        Assert.Equal("chatml", chatml.Name);
        Assert.Equal("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nA<|im_end|>\n"
            + "<|im_start|>assistant\nB<|im_end|>\n"
            + "<|im_start|>user\nC<|im_end|>\n<|im_start|>assistant\n",
            chatml.Render([(ChatSpeaker.System, "S"), (ChatSpeaker.User, "A"), (ChatSpeaker.Assistant, "B"),
                (ChatSpeaker.User, "C")]));
        Assert.Equal("llama3", ChatTemplate.Detect("<|start_header_id|>").Name);
        Assert.Equal("plain", ChatTemplate.Detect(null).Name);
        Assert.Equal("User: Hi\nAssistant:", ChatTemplate.Plain.Render([(ChatSpeaker.User, "Hi")]));
    }
}
