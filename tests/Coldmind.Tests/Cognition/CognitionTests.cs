using System.Diagnostics;
using System.Net;
using System.Text;
using Xunit;
using Coldmind.Models;
using Coldmind.Cognition;
using Coldmind.Cost;
using Coldmind.Data;
using Coldmind.Network;
using Coldmind.Nn;
using Coldmind.Runtime.Classifier;
using Coldmind.Tensors;

namespace Coldmind.Tests;

/// <summary>Calibration, the edge agent's policies and predictions, payloads, authentication, and escalation over real HTTP.</summary>
public class CognitionTests
{
    [Fact]
    public void Temperature_scaling_recovers_the_temperature_labels_were_drawn_with_and_lowers_the_error()
    {
        var rng = new Rng(3);
        const int n = 20000, classes = 5;
        var logits = new float[n * classes];
        var labels = new int[n];
        for (int i = 0; i < n; i++)
        {
            for (int c = 0; c < classes; c++) logits[i * classes + c] = 3 * rng.NextNormal();
            // labels follow softmax(logits / 2): the raw softmax is overconfident
            var p = Calibration.Probabilities(logits.AsSpan(i * classes, classes), classes, 2f);
            double u = rng.NextDouble();
            while (labels[i] < classes - 1 && (u -= p[labels[i]]) > 0) labels[i]++;
        }
        float t = Calibration.FitTemperature(logits, labels, classes);
        Assert.InRange(t, 1.85f, 2.15f);
        float before = Calibration.ExpectedCalibrationError(Calibration.Probabilities(logits, classes), labels, classes);
        float after = Calibration.ExpectedCalibrationError(Calibration.Probabilities(logits, classes, t), labels, classes);
        Assert.True(before > 0.05f, $"raw ECE {before}");
        Assert.True(after < 0.015f, $"scaled ECE {after}");
        Assert.True(Calibration.NegativeLogLikelihood(logits, labels, classes, t) < Calibration.NegativeLogLikelihood(logits, labels, classes, 1));
    }

    [Fact]
    public void Reliability_bins_count_every_example_once()
    {
        float[] p = [0.95f, 0.05f, 0.65f, 0.35f, 0.25f, 0.75f, 0.55f, 0.45f];
        int[] labels = [0, 1, 1, 0];
        var bins = Calibration.Reliability(p, labels, 2, bins: 10);
        Assert.Equal(4, bins.Sum(b => b.Count));
        var top = bins.Single(b => b.Low == 0.9);
        Assert.Equal((1, 0.95, 1.0), (top.Count, Math.Round(top.MeanConfidence, 5), top.Accuracy));
        Assert.Equal((1, 0.0), (bins[6].Count, bins[6].Accuracy)); // 0.65 for class 0, label 1
        Assert.Equal((1, 1.0), (bins[7].Count, bins[7].Accuracy)); // 0.75 for class 1, label 1
        Assert.Equal(0.25 * (0.05 + 0.65 + 0.25 + 0.45), Calibration.ErrorOf(bins), 5);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(8)]
    [InlineData(16)]
    [InlineData(32)]
    public void A_payload_round_trips_within_its_quantisation_step(int bits)
    {
        var rng = new Rng((ulong)bits);
        var x = Enumerable.Range(0, 777).Select(i => i % 5 == 0 ? 0f : rng.NextFloat()).ToArray();
        var message = Payload.Encode(x, bits, topK: 3);
        var (y, k) = Payload.Decode(message, x.Length);
        Assert.Equal(3, k);
        double step = bits switch { 32 => 0, 16 => 1e-3, _ => 0.5 / ((1 << bits) - 1) + 1e-6 };
        for (int i = 0; i < x.Length; i++) Assert.True(Math.Abs(x[i] - y[i]) <= step, $"feature {i}: {x[i]} → {y[i]}");
        Assert.True(message.Length <= Payload.HeaderBytes + Payload.DataBytes(x.Length, bits), "deflate is used only when it is smaller");
    }

    [Fact]
    public void Malformed_requests_and_replies_get_one_clear_error()
    {
        var good = Payload.Encode(new float[64], 8, 1);
        string Error(byte[] message, int features = 64) => Assert.Throws<PayloadException>(() => Payload.Decode(message, features)).Message;
        Assert.Contains("header", Error([1, 2]));
        Assert.Contains("holds 64 features; the model takes 10", Error(good, 10));
        Assert.Contains("bits a feature", Error([3, 1, 64, 0, .. new byte[24]]));
        Assert.Contains("top 0", Error([8, 0, 64, 0, .. new byte[64]]));
        Assert.Contains("data is 10 bytes", Error([8, 1, 64, 0, .. new byte[10]]));
        Assert.Contains("corrupt", Error([8 | 0x80, 1, 64, 0, 0xFF, 0xFF, 0xFF, 0xFF]));
        // a deflate bomb: 1 MB of zeros claiming to be 64 bytes stops at 65
        var bomb = Payload.Encode(new float[60000], 8, 1);
        bomb[2] = 64;
        bomb[3] = 0;
        Assert.Contains("data is 65 bytes", Error(bomb));
        var nan = Payload.Encode([1f, float.NaN], 32, 1);
        Assert.Contains("finite", Error(nan, 2));

        var reply = Payload.EncodeReply([0.1f, 0.7f, 0.2f], 2);
        var (ids, p) = Payload.DecodeReply(reply, 3);
        Assert.Equal([1, 2], ids);
        Assert.Equal(0.7f, p[0], 2);
        Assert.Throws<PayloadException>(() => Payload.DecodeReply(reply.AsSpan(0, reply.Length - 1), 3));
        Assert.Throws<PayloadException>(() => Payload.DecodeReply(reply, 2)); // class 2 of 2
    }

    [Fact]
    public void An_observer_predicts_error_and_remaining_entropy_as_bayes_rule_does()
    {
        // one context, P(o | s) = [[0.9, 0.1], [0.2, 0.8]]
        var observer = new Observer("test", 2, 1, [0.9, 0.1, 0.2, 0.8]);
        double[] q = [0.6, 0.4];
        var (errorAsReport, entropy) = observer.Predict(q, 0, answerIsReport: true);
        Assert.Equal(0.6 * 0.1 + 0.4 * 0.2, errorAsReport, 12);
        var (errorByPosterior, _) = observer.Predict(q, 0, answerIsReport: false);
        Assert.Equal(1 - (0.54 + 0.32), errorByPosterior, 12);
        double expected = 0;
        for (int o = 0; o < 2; o++)
        {
            var post = observer.Update(q, 0, o);
            double po = q[0] * observer.Likelihood(0, 0, o) + q[1] * observer.Likelihood(0, 1, o);
            expected += po * Observer.Entropy(post);
        }
        Assert.Equal(expected, entropy, 12);
        Assert.True(entropy < Observer.Entropy(q), "an informative observation is expected to reduce uncertainty");
    }

    [Fact]
    public void Observer_rows_seen_rarely_fall_back_on_the_coarser_rows()
    {
        // two contexts per report; the source is right about class 1 and says 0 for class 0, seen only in context 0 (report 0, bin 0)
        int[] labels = [0, 0, 0, 0, 1, 1, 1, 1];
        int[] given = [0, 0, 0, 0, 0, 0, 0, 0];
        int[] reports = [0, 0, 0, 0, 1, 1, 1, 1];
        var observer = Observer.Estimate("test", reports, given, labels, 2, contextsPerReport: 2);
        Assert.True(observer.Likelihood(0, 1, 1) > 0.8, "a row seen four times says what it saw");
        // context 1 (report 0, bin 1) was never seen: its rows are the report-level rows, which are context 0's data
        Assert.InRange(observer.Likelihood(1, 1, 1) - observer.Likelihood(0, 1, 1), -0.1, 0);
        Assert.True(observer.Likelihood(1, 1, 1) > 0.7);
        // report 1 was never seen at all: its rows fall back on P(o | s), still informative about the class
        Assert.True(observer.Likelihood(2, 1, 1) > 0.6 && observer.Likelihood(2, 0, 0) > 0.6);
        var posterior = observer.Update([0.5, 0.5], 2, 1);
        Assert.True(posterior[1] > 0.6, $"a report seen to be informative moves the belief: {posterior[1]}");
    }

    [Fact]
    public void The_free_energy_policy_answers_when_sure_or_when_joules_are_dear_and_escalates_when_unsure_and_joules_are_cheap()
    {
        var cloud = new Observer("cloud", 3, 1, [0.95, 0.03, 0.02, 0.03, 0.95, 0.02, 0.02, 0.03, 0.95]);
        var prices = new ActionPrices(1e-6, 1e-4, 100);
        double[] unsure = [0.4, 0.35, 0.25], sure = [0.999, 0.0005, 0.0005];
        Assert.Equal(EdgeAction.Escalate, new ExpectedFreeEnergyPolicy(null, cloud, prices, joulesPerNat: 1, gamma: 1e6).Choose(unsure, 0, false, true));
        Assert.Equal(EdgeAction.Answer, new ExpectedFreeEnergyPolicy(null, cloud, prices, joulesPerNat: 1e-7, gamma: 1e6).Choose(unsure, 0, false, true));
        Assert.Equal(EdgeAction.Answer, new ExpectedFreeEnergyPolicy(null, cloud, prices, joulesPerNat: 1, gamma: 1e6).Choose(sure, 0, false, true));
        Assert.Equal(EdgeAction.Answer, new ExpectedFreeEnergyPolicy(null, cloud, prices, joulesPerNat: 1, gamma: 1e6).Choose(unsure, 0, false, canEscalate: false));
        var g = new ExpectedFreeEnergyPolicy(null, cloud, prices, 1e-4).FreeEnergy(unsure, 0, false, true);
        Assert.Equal(double.PositiveInfinity, g[(int)EdgeAction.Look]);
        Assert.Equal(4 * 0.6 + Observer.Entropy(unsure), g[(int)EdgeAction.Answer], 12);

        Assert.Equal(EdgeAction.Escalate, new ThresholdPolicy(0.5).Choose(unsure, 0, false, true));
        Assert.Equal(EdgeAction.Answer, new ThresholdPolicy(0.5).Choose(sure, 0, false, true));
    }

    [Fact]
    public void A_cascade_spans_always_local_to_always_cloud_and_counts_every_joule_and_byte()
    {
        var (splits, edge, cloudModel) = DigitsPair();
        var device = DeviceProfile.Load("stm32h7");
        var cascade = new Cascade(edge, new LocalCloud(cloudModel, 1f), splits.Validation, device, new CascadeOptions());
        var test = splits.Test;
        var evidence = cascade.Observe(test);
        CloudReply Ask(int i) => cascade.Cloud.Ask(cascade.Request(test, i));

        var local = cascade.Run(new ThresholdPolicy(0), evidence, test.Labels, Ask);
        Assert.Equal(edge.Compact!.Accuracy(test), local.Accuracy, 5);
        Assert.Equal((0.0, 0.0), (local.EscalatedFraction, local.BytesSentPerInference));
        Assert.Equal(cascade.EdgeJoules, local.JoulesPerInference, 12);

        var cloud = cascade.Run(new ThresholdPolicy(1.01), evidence, test.Labels, Ask);
        Assert.Equal(1.0, cloud.EscalatedFraction);
        var requests = Enumerable.Range(0, test.Count).Select(i => cascade.Request(test, i)).ToArray();
        Assert.Equal(requests.Average(r => r.Length), cloud.BytesSentPerInference, 9);
        Assert.Equal(5, cloud.BytesReceivedPerInference); // top-1: count, class, half probability
        double radio = requests.Average(r => cascade.Radio.ExchangeJoules(r.Length, 5, device.IdleWatts));
        Assert.Equal(cascade.EdgeJoules + radio, cloud.JoulesPerInference, 12);
        Assert.True(cascade.Payload.MeanBytes < test.FeatureCount, $"the chosen payload ({cascade.Payload.Bits} bits, {cascade.Payload.MeanBytes:F1} bytes) is below one byte a feature");
        Assert.True(cascade.Payload.CloudAccuracy >= cascade.Payloads.Single(p => p.Bits == 32).CloudAccuracy - 0.005);

        // the EFE policy's energy preference moves it from never to (nearly) always escalating
        var (_, efe) = cascade.Sweep(evidence, test.Labels, Ask);
        Assert.Equal(0, efe[0].EscalatedFraction);
        Assert.True(efe[^1].EscalatedFraction > 0.2, $"with joules nearly free the agent escalates the unsure inputs ({efe[^1].EscalatedFraction:P1})");
        Assert.True(efe[^1].Accuracy >= local.Accuracy, "escalating to a better model does not lose accuracy");
    }

    [Fact]
    public void Messages_are_authenticated_fresh_and_never_replayed()
    {
        var secret = TestKeys.Secret();
        var key = new MessageAuth(secret, "server");
        var client = new MessageAuth(secret, "client");
        var other = new MessageAuth(TestKeys.Secret(), "client");
        byte[] body = [1, 2, 3];
        string signature = client.Sign("POST", "/x", "server", body);
        Assert.True(key.Verify(signature, "POST", "/x", body, out string sender, out _));
        Assert.Equal("client", sender);
        Assert.False(key.Verify(signature, "POST", "/x", body, out _, out string replay));
        Assert.Contains("replayed", replay);
        Assert.False(key.Verify(other.Sign("POST", "/x", "server", body), "POST", "/x", body, out _, out string wrong));
        Assert.Contains("bad signature", wrong);
        Assert.False(key.Verify(client.Sign("POST", "/x", "server", body), "POST", "/x", [1, 2, 4], out _, out _));
        Assert.False(key.Verify(client.Sign("POST", "/x", "server", body), "POST", "/y", body, out _, out _));
        Assert.False(key.Verify(client.Sign("POST", "/x", "server", DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 3600, body), "POST", "/x", body, out _, out string old));
        Assert.Contains("minutes", old);
        Assert.False(key.Verify("t=1,mac=zz", "POST", "/x", body, out _, out string malformed));
        Assert.Contains("malformed", malformed);
        Assert.False(key.Verify(null, "POST", "/x", body, out _, out string missing));
        Assert.Contains("no X-Coldmind-Auth", missing);
        Assert.Contains("at least 32", Assert.Throws<ColdmindException>(() => KeyRing.FromSecret([1, 2, 3])).Message);
    }

    [Fact]
    public async Task The_server_answers_signed_requests_rejects_bad_ones_and_stays_up()
    {
        var (splits, _, cloudModel) = DigitsPair();
        var secret = TestKeys.Secret();
        var key = new MessageAuth(secret, "server");
        var log = new List<string>();
        await using var server = await EscalationServer.StartAsync(cloudModel, 1f, "127.0.0.1:0", key, 4096, line => { lock (log) log.Add(line); });
        using var client = new HttpCloud(server.Address, new MessageAuth(secret, "edge"), TimeSpan.FromSeconds(5));
        Assert.Equal((64, 10), (client.Inputs, client.Classes));

        var test = splits.Test;
        var request = Payload.Encode(test.Features.AsSpan(0, 64), 8, 3);
        var remote = client.Ask(request);
        var local = new LocalCloud(cloudModel, 1f).Ask(request);
        Assert.Equal(local.Classes, remote.Classes);
        Assert.Equal(local.Probabilities, remote.Probabilities);

        async Task<(HttpStatusCode, string)> Post(byte[] body, string? auth)
        {
            using var http = new HttpClient { BaseAddress = server.Address }; // a fresh connection: the server closes one whose body it refused unread
            using var message = new HttpRequestMessage(HttpMethod.Post, EscalationServer.ClassifyPath) { Content = new ByteArrayContent(body) };
            if (auth != null) message.Headers.Add(MessageAuth.Header, auth);
            using var response = await http.SendAsync(message);
            return (response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        var wrongKey = new MessageAuth(TestKeys.Secret(), "edge");
        var signer = new MessageAuth(secret, "edge");
        string to = EscalationServer.Identity(server.Address);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Post(request, null)).Item1);
        Assert.Equal(HttpStatusCode.Unauthorized, (await Post(request, wrongKey.Sign("POST", EscalationServer.ClassifyPath, to, request))).Item1);
        var big = new byte[5000];
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await Post(big, signer.Sign("POST", EscalationServer.ClassifyPath, to, big))).Item1);
        var nan = Payload.Encode(Enumerable.Repeat(float.NaN, 64).ToArray(), 32, 1);
        var (status, text) = await Post(nan, signer.Sign("POST", EscalationServer.ClassifyPath, to, nan));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("finite", text);
        var wrongShape = Payload.Encode(new float[10], 8, 1);
        Assert.Equal(HttpStatusCode.BadRequest, (await Post(wrongShape, signer.Sign("POST", EscalationServer.ClassifyPath, to, wrongShape))).Item1);

        Assert.True(client.Ask(request).Answered); // still up
        Assert.Equal(5, server.Rejected);
        lock (log) Assert.Equal(5, log.Count(l => l.StartsWith("rejected", StringComparison.Ordinal)));
        Assert.Contains("refused", Assert.Throws<ColdmindException>(() => new HttpCloud(server.Address, wrongKey, TimeSpan.FromSeconds(5))).Message);
    }

    [Fact]
    public async Task With_the_server_process_killed_mid_run_the_edge_keeps_answering_locally()
    {
        using var dir = new TempDir();
        var (splits, edge, cloudModel) = DigitsPair();
        string keyPath = dir.File("key");
        TestKeys.WriteSecret(keyPath);
        string teacherPath = dir.File("cloud.safetensors");
        TensorFile.Write(teacherPath, CloudNet!.NamedParameters(), new Provenance { Spec = CloudSpec }.ToMetadata());

        // the cloud: `coldmind serve` in its own process
        var dll = Path.Combine(AppContext.BaseDirectory, "Coldmind.Cli.dll");
        var psi = new ProcessStartInfo("dotnet", [dll, "serve", teacherPath, "--listen", "127.0.0.1:0", "--key-file", keyPath]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var server = Process.Start(psi)!;
        try
        {
            string line = server.StandardOutput.ReadLine() ?? throw new Xunit.Sdk.XunitException("serve printed nothing: " + server.StandardError.ReadToEnd());
            var address = new Uri(line.Split(" on ")[1].Split(' ')[0]);
            using var client = new HttpCloud(address, MessageAuth.FromKeyFile(keyPath, "edge"), TimeSpan.FromSeconds(2));
            var cascade = new Cascade(edge, client, splits.Validation, DeviceProfile.Load("phone"), new CascadeOptions());
            var test = splits.Test;
            var evidence = cascade.Observe(test);
            int escalations = 0;
            var point = cascade.Run(new ThresholdPolicy(1.01), evidence, test.Labels, i =>
            {
                if (++escalations == 100) server.Kill(); // mid-run
                return client.Ask(cascade.Request(test, i));
            });
            Assert.True(point.FallbackFraction > 0.5, $"after the kill the edge answered alone ({point.FallbackFraction:P1})");
            Assert.True(point.EscalatedFraction >= 99.0 / test.Count);
            Assert.True(client.Failures >= 1);
            Assert.InRange(point.Accuracy, edge.Compact!.Accuracy(test) - 0.05, 1.0);
        }
        finally
        {
            if (!server.HasExited) server.Kill();
        }
    }

    [Fact]
    public void Cascade_cli_reports_its_points_and_refuses_bad_flags()
    {
        using var dir = new TempDir();
        var (_, edge, _) = DigitsPair();
        string edgePath = dir.File("edge.safetensors"), cloudPath = dir.File("cloud.safetensors");
        edge.Compact!.WithMetadata(new Dictionary<string, string> { ["coldmind.data"] = "digits" }).Save(edgePath);
        TensorFile.Write(cloudPath, CloudNet!.NamedParameters(), new Provenance { Spec = CloudSpec }.ToMetadata());
        var (exit, stdout, stderr) = CliProcess.Run("cascade", "--edge", edgePath, "--cloud", cloudPath, "--device", "stm32h7", "--json");
        Assert.True(exit == 0, stderr);
        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        var points = json.RootElement.GetProperty("points");
        foreach (var name in new[] { "always local", "always cloud", "threshold", "efe" })
            Assert.InRange(points.GetProperty(name).GetProperty("accuracy").GetDouble(), 0.8, 1.0);
        Assert.True(json.RootElement.GetProperty("efe_minus_threshold_at_equal_joules").GetProperty("points").GetInt32() > 0);

        var (badExit, _, badErr) = CliProcess.Run("cascade", "--edge", edgePath, "--cloud", cloudPath, "--cloud-url", "http://127.0.0.1:1");
        Assert.Equal(1, badExit);
        Assert.Contains("not both or neither", badErr);
        string keyPath = dir.File("key");
        TestKeys.WriteSecret(keyPath);
        var (unreachable, _, unreachableErr) = CliProcess.Run("cascade", "--edge", edgePath, "--cloud-url", "http://127.0.0.1:1", "--key-file", keyPath);
        Assert.Equal(1, unreachable);
        Assert.Contains("Cannot reach the cloud", unreachableErr);
    }

    [Fact]
    public void A_forward_only_head_refit_recovers_from_a_drift_and_a_huge_lambda_keeps_the_old_head()
    {
        var (splits, edge, _) = DigitsPair();
        var model = edge.Compact!;
        var (w, b) = model.Head();
        var same = model.WithHead(w, b);
        var x = splits.Test.Features.AsSpan(0, 64);
        Assert.Equal(model.Predict(x), same.Predict(x));

        var drift = Drift.Parse("contrast:0.4");
        var adaptOn = drift.Apply(splits.Validation);
        var drifted = drift.Apply(splits.Test);
        float before = model.Accuracy(drifted);
        var refit = ForwardOnlyAdaptation.Refit(model, adaptOn);
        Assert.True(refit.Model.Accuracy(drifted) > before + 0.02, $"refit {refit.Model.Accuracy(drifted):P1} against {before:P1} before");
        Assert.True(refit.SolveMacs > adaptOn.Count * 13L * 13, "at least the Gram matrix of the 12 features and the bias");
        var kept = ForwardOnlyAdaptation.Refit(model, adaptOn, lambda: 1e9);
        Assert.Equal(model.Accuracy(drifted), kept.Model.Accuracy(drifted), 2);
        Assert.Contains("shift:PIXELS", Assert.Throws<ColdmindException>(() => Drift.Parse("rotate:3")).Message);
    }

    private static readonly ClassifierSpec CloudSpec = ClassifierSpec.ForMlp([1, 8, 8], 10, [64]);
    private static Module? CloudNet;
    private static (DataSplits, ClassifierModel Edge, ClassifierModel Cloud)? _pair;
    private static readonly Lock PairLock = new();

    /// <summary>A small edge MLP and a wider cloud MLP trained on digits, once for all tests.</summary>
    private static (DataSplits Splits, ClassifierModel Edge, ClassifierModel Cloud) DigitsPair()
    {
        lock (PairLock)
        {
            if (_pair is { } p) return p;
            var splits = BuiltinData.Load("digits");
            var edgeNet = new Mlp(64, [12], 10, new Rng(1));
            Trainer.Fit(edgeNet, splits.Train, null, new TrainOptions { Epochs = 12, BatchSize = 64, LearningRate = 3e-3f });
            CloudNet = CloudSpec.Build(new Rng(2));
            Trainer.Fit(CloudNet, splits.Train, null, new TrainOptions { Epochs = 20, BatchSize = 64, LearningRate = 3e-3f });
            _pair = (splits, ClassifierModel.Of(CompactClassifier.Compile(edgeNet), "edge"), ClassifierModel.Of(CloudNet, CloudSpec, "cloud"));
            return _pair.Value;
        }
    }
}
