using System.Diagnostics.Metrics;
using Coldmind.Cognition;
using Coldmind.Data;
using Coldmind.Network;
using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;
using Coldmind.Swarm;
using Coldmind.Tensors;
using Microsoft.Extensions.AI;
using Xunit;

namespace Coldmind.Serving.Tests;

/// <summary>The counters on System.Diagnostics.Metrics, read as dotnet-counters reads them (a MeterListener).</summary>
public class MetricsTests(Models models) : IClassFixture<Models>
{
    /// <summary>The latest value of every observable instrument of <paramref name="meter"/>, by name.</summary>
    private static async Task<Dictionary<string, double>> Observe(string meter, Func<Task> beforeReading)
    {
        var values = new Dictionary<string, double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == meter) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((i, v, _, _) => values[i.Name] = v);
        listener.SetMeasurementEventCallback<int>((i, v, _, _) => values[i.Name] = v);
        listener.SetMeasurementEventCallback<double>((i, v, _, _) => values[i.Name] = v);
        listener.Start();
        await beforeReading();
        listener.RecordObservableInstruments();
        return values;
    }

    [Fact]
    public async Task The_chat_client_publishes_requests_tokens_and_speed()
    {
        using var chat = ColdmindChatClient.Open(models.Stories);
        var values = await Observe(ServingMetrics.MeterName, async () =>
        {
            await chat.GetResponseAsync("Hi", new ChatOptions { MaxOutputTokens = 12, Temperature = 0 });
            await Assert.ThrowsAsync<ColdmindException>(() => chat.GetResponseAsync("Hi",
                new ChatOptions { MaxOutputTokens = 100_000 }));
        });
        Assert.Equal(1, values["coldmind.serving.requests"]);
        Assert.Equal(1, values["coldmind.serving.rejected"]);
        Assert.Equal(12, values["coldmind.serving.completion_tokens"]);
        Assert.True(values["coldmind.serving.prompt_tokens"] > 0);
        Assert.True(values["coldmind.serving.tokens_per_second"] > 0);
        Assert.Equal(0, values["coldmind.serving.queue_length"]);
        Assert.True(values.ContainsKey("coldmind.serving.time_to_first_token")); // the histogram recorded the answer
    }

    [Fact]
    public async Task With_a_device_the_tokens_are_priced_in_joules_as_coldmind_cost_prices_them()
    {
        var (exit, stdout, err) = Cli.Run("cost", models.Stories, "--device", "rpi5", "--json");
        Assert.True(exit == 0, err);
        double perToken;
        using (var json = System.Text.Json.JsonDocument.Parse(stdout))
            perToken = json.RootElement.GetProperty("joules_per_inference").GetDouble();
        using var chat = ColdmindChatClient.Open(models.Stories,
            new ChatClientSettings { Device = Coldmind.Cost.DeviceProfile.Load("rpi5") });
        ChatResponse? answer = null;
        var values = await Observe(ServingMetrics.MeterName, async () =>
            answer = await chat.GetResponseAsync("Hi", new ChatOptions { MaxOutputTokens = 10 }));
        Assert.Equal(perToken, chat.Metrics.JoulesPerToken, 1e-12);
        Assert.Equal(perToken * answer!.Usage!.TotalTokenCount!.Value, values["coldmind.serving.joules"], 1e-12);
        Assert.Contains("coldmind_joules_estimate_total ", chat.Metrics.ToPrometheus(), StringComparison.Ordinal);
        using var unpriced = ColdmindChatClient.Open(models.Stories);
        Assert.DoesNotContain("joules", unpriced.Metrics.ToPrometheus(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_escalation_server_publishes_what_it_answered_and_refused()
    {
        var untrained = new Coldmind.Nn.Mlp(64, [8], 10, new Rng(1)); // what it answers does not matter here
        var model = ClassifierModel.Of(CompactClassifier.Compile(untrained), "cloud");
        var secret = KeyRing.FromSecret(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var key = new MessageAuth(secret, "server");
        EscalationServer? server = null;
        var values = await Observe("Coldmind.Cognition", async () =>
        {
            server = await EscalationServer.StartAsync(model, 1f, "127.0.0.1:0", key, 4096, _ => { });
            using var cloud = new HttpCloud(server.Address, new MessageAuth(secret, "edge"), TimeSpan.FromSeconds(10));
            cloud.Ask(Payload.Encode(new float[64], 8, 3));
            using var http = new HttpClient();
            using var unsigned = await http.PostAsync(new Uri(server.Address, EscalationServer.ClassifyPath),
                new ByteArrayContent(new byte[16]));
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, unsigned.StatusCode);
        });
        await server!.DisposeAsync();
        Assert.Equal(1, values["coldmind.escalation.served"]);
        Assert.Equal(1, values["coldmind.escalation.rejected"]);
    }

    [Fact]
    public async Task A_swarm_node_publishes_what_it_sent_and_what_failed()
    {
        var data = BuiltinData.Load("digits");
        var learner = LocalLearner.For(data.Train, [8], 1);
        var gossip = new GossipOptions(new LocalTraining(), ExchangeCodec.Parse("f32"));
        var options = new NodeOptions("127.0.0.1:0", ["127.0.0.1:9"], gossip, TimeSpan.FromMilliseconds(100), Cycles: 2,
            CheckpointPath: null, MaxMessageBytes: 1 << 20, Linger: TimeSpan.Zero);
        var auth = new MessageAuth(KeyRing.FromSecret(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)), "127.0.0.1:0");
        SwarmNode? node = null;
        NodeSummary? summary = null;
        var values = await Observe("Coldmind.Swarm", async () =>
        {
            node = await SwarmNode.StartAsync(options, learner, data.Train, Enumerable.Range(0, 100).ToArray(), auth,
                _ => { });
            summary = await node.RunAsync(data.Test);
        });
        await node!.DisposeAsync();
        // port 9 (discard) has no node: every send fails; the meter says what the node's summary says
        Assert.True(summary!.SendFailures >= 2);
        Assert.Equal(summary.SendFailures, values["coldmind.swarm.send_failures"]);
        Assert.Equal(summary.BytesSent, values["coldmind.swarm.bytes_sent"]);
        Assert.Equal(0, values["coldmind.swarm.received"]);
    }
}
