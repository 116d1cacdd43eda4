using System.Diagnostics;
using System.Numerics.Tensors;
using System.Net;
using System.Net.Sockets;
using Coldmind.Data;
using Coldmind.Formats;
using Coldmind.Network;
using Coldmind.Swarm;
using Coldmind.Tensors;
using Xunit;

namespace Coldmind.Tests;

/// <summary>What a receiver decodes from <paramref name="v"/> sent in <paramref name="codec"/>, dense (unsent values 0).</summary>
internal static class CodecExtensions
{
    public static float[] RoundTrip(this ExchangeCodec codec, float[] v)
    {
        var bytes = new List<byte>();
        codec.Encode(v, bytes);
        codec.Decode(bytes.ToArray(), v.Length, out var values, out var indices);
        if (indices == null) return values;
        var dense = new float[v.Length];
        for (int i = 0; i < indices.Length; i++) dense[indices[i]] = values[i];
        return dense;
    }
}

public class ExchangeCodecTests
{
    private static float[] Vector(int n, ulong seed)
    {
        var rng = new Rng(seed);
        return Enumerable.Range(0, n).Select(_ => rng.NextNormal() * 0.1f).ToArray();
    }

    [Theory]
    [InlineData(1)] [InlineData(127)] [InlineData(128)] [InlineData(129)] [InlineData(1000)] [InlineData(4099)]
    public void Every_codec_round_trips_within_its_error_and_size(int n)
    {
        var v = Vector(n, (ulong)n);
        Assert.Equal(v, ExchangeCodec.Float32.RoundTrip(v));

        var int8 = new ExchangeCodec(ExchangeCodec.Kind.Int8).RoundTrip(v);
        for (int start = 0; start < n; start += ExchangeCodec.Block)
        {
            int len = Math.Min(ExchangeCodec.Block, n - start);
            float scale = MathF.Abs(TensorPrimitives.MaxMagnitude(v.AsSpan(start, len))) / 127f;
            for (int i = start; i < start + len; i++) Assert.InRange(MathF.Abs(int8[i] - v[i]), 0, scale / 2 + 1e-7f);
        }

        var ternary = new ExchangeCodec(ExchangeCodec.Kind.Ternary).RoundTrip(v);
        for (int start = 0; start < n; start += ExchangeCodec.Block)
        {
            var block = ternary.AsSpan(start, Math.Min(ExchangeCodec.Block, n - start)).ToArray();
            Assert.True(block.Select(MathF.Abs).Distinct().Count() <= 2, "a ternary block holds 0 and ±scale only");
        }

        var sign = new ExchangeCodec(ExchangeCodec.Kind.Sign).RoundTrip(v);
        for (int start = 0; start < n; start += ExchangeCodec.Block)
        {
            int len = Math.Min(ExchangeCodec.Block, n - start);
            float scale = TensorPrimitives.SumOfMagnitudes(v.AsSpan(start, len)) / len;
            for (int i = start; i < start + len; i++) Assert.Equal(v[i] < 0 ? -scale : scale, sign[i]);
        }

        var topk = new ExchangeCodec(ExchangeCodec.Kind.TopK, 0.1f).RoundTrip(v);
        int kept = topk.Count(x => x != 0);
        Assert.Equal(Math.Max(1, (int)MathF.Round(0.1f * n)), kept);
        float smallestKept = topk.Where(x => x != 0).Min(MathF.Abs);
        Assert.All(v.Where((x, i) => topk[i] == 0), x => Assert.True(MathF.Abs(x) <= smallestKept));

        int Size(ExchangeCodec c) { var b = new List<byte>(); c.Encode(v, b); return b.Count; }
        int blocks = (n + 127) / 128;
        Assert.Equal(4 * n, Size(ExchangeCodec.Float32));
        Assert.Equal(4 * blocks + n, Size(new ExchangeCodec(ExchangeCodec.Kind.Int8)));
        Assert.True(Size(new ExchangeCodec(ExchangeCodec.Kind.Ternary)) <= 4 * blocks + (n + 4) / 5 + blocks);
        Assert.True(Size(new ExchangeCodec(ExchangeCodec.Kind.Sign)) <= 4 * blocks + n / 8 + blocks);
    }

    [Fact]
    public void The_ternary_code_has_the_least_error_of_any_ternary_code()
    {
        var ternary = new ExchangeCodec(ExchangeCodec.Kind.Ternary);
        var rng = new Rng(11);
        for (int trial = 0; trial < 300; trial++)
        {
            // Small blocks, with ties and zeros, against every one of the 3^n codes at its own best scale.
            int n = 1 + trial % 7;
            var v = Enumerable.Range(0, n).Select(_ => trial % 3 == 0 ? rng.NextInt(5) - 2f : rng.NextNormal()).ToArray();
            double best = double.MaxValue;
            for (int code = 0; code < (int)Math.Pow(3, n); code++)
            {
                var t = new int[n];
                for (int i = 0, c = code; i < n; i++, c /= 3) t[i] = c % 3 - 1;
                int kept = t.Count(x => x != 0);
                double scale = kept == 0 ? 0 : Math.Max(0, t.Select((x, i) => x * (double)v[i]).Sum() / kept);
                best = Math.Min(best, t.Select((x, i) => Math.Pow(v[i] - x * scale, 2)).Sum());
            }
            var decoded = ternary.RoundTrip(v);
            Assert.InRange(decoded.Select((x, i) => Math.Pow(v[i] - x, 2)).Sum(), 0, best + 1e-5);
        }

        // A Gaussian block: Lloyd-Max's three-level error, 19 % of the energy, where absmean rounding
        // (round(v / mean|v|) clamped to ±1, BitNet's rule) leaves 26 %.
        double error = 0, absmeanError = 0, energy = 0;
        for (int b = 0; b < 200; b++)
        {
            var v = Enumerable.Range(0, ExchangeCodec.Block).Select(_ => rng.NextNormal()).ToArray();
            var decoded = ternary.RoundTrip(v);
            float mean = v.Average(MathF.Abs);
            error += v.Select((x, i) => Math.Pow(x - decoded[i], 2)).Sum();
            absmeanError += v.Sum(x => Math.Pow(x - Math.Clamp(MathF.Round(x / mean), -1, 1) * mean, 2));
            energy += v.Sum(x => (double)x * x);
        }
        Assert.InRange(error / energy, 0.17, 0.21);
        Assert.InRange(absmeanError / energy, 0.24, 0.28);
    }

    [Fact]
    public void Error_feedback_delays_what_compression_drops_but_loses_nothing()
    {
        var v = Vector(1000, 7);
        var codec = new ExchangeCodec(ExchangeCodec.Kind.TopK, 0.05f);
        var feedback = new ErrorFeedback(v.Length);
        var sum = new float[v.Length];
        const int steps = 200;
        for (int s = 0; s < steps; s++)
        {
            var intended = feedback.WithResidual(v);
            var decoded = codec.RoundTrip(intended);
            feedback.Sent(intended, decoded);
            TensorPrimitives.Add(sum, decoded, sum);
        }
        // Σ decoded = steps·v − residual: the residual stays bounded, so the mean sent converges to v
        for (int i = 0; i < v.Length; i++) Assert.InRange(sum[i] / steps - v[i], -0.02f, 0.02f);
        var without = codec.RoundTrip(v);
        Assert.True(v.Where((x, i) => without[i] == 0).Any(x => MathF.Abs(x) > 0.05f), "without feedback the small values never arrive");
    }

    [Theory]
    [InlineData(1)] [InlineData(2)] [InlineData(127)] [InlineData(1000)] [InlineData(25450)]
    public void The_entropy_code_rounds_to_one_step_and_fits_its_rate(int n)
    {
        var v = Vector(n, (ulong)n + 7);
        v[0] = 5f; // an outlier of 50 σ
        foreach (float bits in new[] { 0.5f, 1.88f, 4f })
        {
            var codec = ExchangeCodec.Parse(string.Create(System.Globalization.CultureInfo.InvariantCulture, $"entropy:{bits}"));
            var bytes = new List<byte>();
            codec.Encode(v, bytes);
            Assert.Equal(bytes.Count, codec.Decode(bytes.ToArray(), n, out var decoded, out var indices));
            Assert.Null(indices);
            float step = BitConverter.ToSingle(bytes.ToArray(), 0), shrink = BitConverter.ToSingle(bytes.ToArray(), 4);
            Assert.InRange(shrink, -0.5f, 0.5f);
            for (int i = 0; i < n; i++)
            {
                int level = (int)Math.Clamp(MathF.Round(v[i] / step), -EntropyCode.MaxLevel, EntropyCode.MaxLevel);
                Assert.Equal(level == 0 ? 0 : MathF.CopySign((Math.Abs(level) - shrink) * step, level), decoded[i]);
                Assert.InRange(MathF.Abs(decoded[i] - v[i]), 0, step * (0.5f + MathF.Abs(shrink)) * 1.0001f);
            }
            Assert.True(bytes.Count <= bits * n / 8 + 24, $"{bits} bits a value: {bytes.Count} bytes for {n} values");
        }
    }

    [Fact]
    public void At_ternarys_rate_the_entropy_code_errs_under_three_fifths_as_much_on_a_gaussian_vector()
    {
        var v = Vector(25_450, 3);
        double Error(ExchangeCodec c) => Math.Pow(TensorPrimitives.Distance(c.RoundTrip(v), v) / TensorPrimitives.Norm(v), 2);
        List<byte> ternary = [], entropy = [];
        new ExchangeCodec(ExchangeCodec.Kind.Ternary).Encode(v, ternary);
        var codec = ExchangeCodec.Parse("entropy:1.875"); // ternary's: 4 + 26 bytes a block of 128
        codec.Encode(v, entropy);
        Assert.True(entropy.Count <= ternary.Count, $"{entropy.Count} bytes against ternary's {ternary.Count}");
        double t = Error(new ExchangeCodec(ExchangeCodec.Kind.Ternary)), e = Error(codec);
        Assert.InRange(t, 0.18, 0.20); // Lloyd–Max's three levels
        Assert.True(e < 0.6 * t, $"entropy code error {e:P1} against ternary's {t:P1}");
    }

    [Fact]
    public void The_entropy_code_keeps_every_level_of_a_flat_vector_with_rare_tails()
    {
        // 100 000 values spread evenly over levels −50..50 and one on each level beyond: at the highest rate the
        // rare levels need more of the 4 096 frequency slots than rounding leaves, and the common ones give them up
        var rng = new Rng(2);
        var v = Enumerable.Range(0, 100_000).Select(_ => (rng.NextFloat() * 2 - 1) * 50.4f).Concat(Enumerable.Range(51, 77).SelectMany(k => new[] { k, -k }).Select(k => (float)k)).ToArray();
        var codec = ExchangeCodec.Parse("entropy:16");
        var bytes = new List<byte>();
        codec.Encode(v, bytes);
        Assert.InRange(BitConverter.ToSingle(bytes.ToArray(), 0), 1f, 1.001f); // the finest step: the largest value on level 127
        Assert.True(TensorPrimitives.Distance(codec.RoundTrip(v), v) / TensorPrimitives.Norm(v) < 0.02);
    }

    [Fact]
    public void An_entropy_code_with_overflowing_levels_a_bad_frequency_table_or_a_bad_coder_state_is_refused()
    {
        var bytes = new List<byte>();
        ExchangeCodec.Parse("entropy:1.875").Encode(Vector(1000, 5), bytes);
        var good = bytes.ToArray();
        string Refusal(Action<byte[]> corrupt)
        {
            var bad = (byte[])good.Clone();
            corrupt(bad);
            return Assert.Throws<SwarmMessageException>(() => EntropyCode.Decode(bad, 1000, out _)).Message;
        }
        int table = 9, symbols = 2 * good[8] + 1, payload = table + 2 * symbols + 4;
        Assert.Contains("finite", Refusal(b => System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(b, float.MaxValue / 2)));
        Assert.Contains("sum to", Refusal(b => b[table]++));
        Assert.Contains("state", Refusal(b => Array.Clear(b, payload, 4)));
        Assert.Contains("end", Refusal(b => b[^1] ^= 0x5A));
    }

    [Fact]
    public void The_entropy_code_sends_zeros_in_a_few_bytes_and_a_constant_within_float_rounding()
    {
        var codec = ExchangeCodec.Parse("entropy:1.88");
        var zeros = new List<byte>();
        codec.Encode(new float[1000], zeros);
        Assert.True(zeros.Count < 24, $"{zeros.Count} bytes");
        Assert.Equal(new float[1000], codec.RoundTrip(new float[1000]));
        var constant = Enumerable.Repeat(0.25f, 1000).ToArray();
        Assert.All(codec.RoundTrip(constant), x => Assert.Equal(0.25f, x, 1e-6f));
    }

    [Theory]
    [InlineData("topk:0")] [InlineData("topk:1.5")] [InlineData("int4")] [InlineData("")] [InlineData("entropy:0")] [InlineData("entropy:20")] [InlineData("entropy:x")]
    public void Bad_codec_specs_are_refused(string spec) => Assert.Throws<ColdmindException>(() => ExchangeCodec.Parse(spec));
}

public class SwarmMessageTests
{
    private static readonly LocalLearner Learner = new(64, [8], 10, 3);

    private static byte[] Message(ExchangeCodec codec, float[]? values = null)
    {
        var node = new GossipNode("127.0.0.1:9000", values ?? Learner.Initial(), 12, 4);
        node.View.Merge([new PeerDescriptor("127.0.0.1:9001", 5), new PeerDescriptor("127.0.0.1:9002", 6)]);
        return node.Message(Learner, codec, 1000);
    }

    /// <summary>An f32 message with its last value overwritten by NaN (a sender cannot produce one).</summary>
    internal static byte[] WithNaN(byte[] f32Message)
    {
        var bad = (byte[])f32Message.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bad.AsSpan(bad.Length - 4), float.NaN);
        return bad;
    }

    [Fact]
    public void A_message_round_trips_with_its_view_and_age()
    {
        var w = Learner.Initial();
        w[3] += 0.5f;
        var m = SwarmMessage.Decode(Message(ExchangeCodec.Float32, w), Learner.ModelId, Learner.ParameterCount);
        Assert.Equal("127.0.0.1:9000", m.Sender);
        Assert.Equal(12, m.Age);
        Assert.Equal(["127.0.0.1:9000", "127.0.0.1:9001", "127.0.0.1:9002"], m.View.Select(p => p.Address).OrderBy(a => a).ToArray());
        Assert.Equal(0.5f, m.Values[3], 6);
    }

    [Theory]
    [InlineData("f32")] [InlineData("int8")] [InlineData("ternary")] [InlineData("sign")] [InlineData("topk:0.2")] [InlineData("entropy:1.88")]
    public void Every_truncation_and_trailing_byte_is_refused_with_a_reason(string codec)
    {
        var bytes = Message(ExchangeCodec.Parse(codec));
        for (int n = 0; n < bytes.Length; n++)
            Assert.Throws<SwarmMessageException>(() => SwarmMessage.Decode(bytes.AsSpan(0, n), Learner.ModelId, Learner.ParameterCount));
        Assert.Throws<SwarmMessageException>(() => SwarmMessage.Decode([.. bytes, 0], Learner.ModelId, Learner.ParameterCount));
    }

    [Fact]
    public void Another_model_a_wrong_length_and_non_finite_values_are_refused()
    {
        var bytes = Message(ExchangeCodec.Float32);
        Assert.Contains("not this swarm's model", Assert.Throws<SwarmMessageException>(() => SwarmMessage.Decode(bytes, Learner.ModelId + 1, Learner.ParameterCount)).Message);
        Assert.Contains("parameters", Assert.Throws<SwarmMessageException>(() => SwarmMessage.Decode(bytes, Learner.ModelId, Learner.ParameterCount + 1)).Message);
        var w = Learner.Initial();
        w[5] = float.NaN;
        Assert.Contains("diverged", Assert.Throws<SwarmMessageException>(() => Message(ExchangeCodec.Float32, w)).Message);
        Assert.Contains("finite", Assert.Throws<SwarmMessageException>(() => SwarmMessage.Decode(WithNaN(bytes), Learner.ModelId, Learner.ParameterCount)).Message);
        var bad = (byte[])bytes.Clone();
        bad[0] = (byte)'X';
        Assert.Contains("magic", Assert.Throws<SwarmMessageException>(() => SwarmMessage.Decode(bad, Learner.ModelId, Learner.ParameterCount)).Message);
    }

    [Theory]
    [InlineData("topk:0.3")] [InlineData("entropy:1.88")]
    public void Random_bytes_never_crash_the_decoder(string codec)
    {
        var rng = new Rng(11);
        var w = Learner.Initial();
        for (int i = 0; i < w.Length; i++) w[i] += 0.1f * rng.NextNormal();
        var good = Message(ExchangeCodec.Parse(codec), w);
        for (int trial = 0; trial < 2000; trial++)
        {
            var bytes = (byte[])good.Clone();
            for (int k = 0; k < 3; k++) bytes[rng.NextInt(bytes.Length)] = (byte)rng.NextInt(256);
            try { SwarmMessage.Decode(bytes, Learner.ModelId, Learner.ParameterCount); }
            catch (SwarmMessageException) { }
        }
    }
}

public class GossipProtocolTests
{
    [Fact]
    public void The_merge_is_age_weighted_over_the_values_sent_and_a_clip_bounds_a_step()
    {
        var initial = new float[4];
        var m = new SwarmMessage(SwarmMessage.Type.Gossip, 0, "a", 3, 0, 4, [], ExchangeCodec.Float32, [1, 1, 1, 1], null);
        var w = new float[4];
        Assert.Equal(3, GossipNode.Merge(w, 1, GossipNode.Received(w, m, initial, 0), m.Age));
        Assert.All(w, x => Assert.Equal(0.75f, x, 6)); // (1·0 + 3·1) / 4

        var partial = m with { Values = [2f], Indices = [2] };
        var v = new float[] { 5, 5, 5, 5 };
        Assert.Equal([5, 5, 2, 5], GossipNode.Received(v, partial, initial, 0)); // the receiver's own values where none were sent
        GossipNode.Merge(v, 1, GossipNode.Received(v, partial, initial, 0), partial.Age);
        Assert.Equal([5, 5, 2.75f, 5], v);

        var poisoned = m with { Values = [100, 100, 100, 100] };
        var c = new float[4];
        var clipped = GossipNode.Received(c, poisoned, initial, clip: 2);
        Assert.InRange(TensorPrimitives.Norm(clipped), 2 - 1e-5f, 2 + 1e-5f);
        GossipNode.Merge(c, 1, clipped, poisoned.Age);
        Assert.InRange(TensorPrimitives.Norm(c), 0, 2 * 0.75f + 1e-5f);
    }

    [Fact]
    public void A_receiver_that_counts_a_share_of_its_own_age_takes_more_of_the_model_it_receives()
    {
        var learner = new LocalLearner(64, [8], 10, 3);
        var data = BuiltinData.Load("digits").Train;
        var sent = learner.Initial();
        for (int i = 0; i < sent.Length; i++) sent[i] += 1;
        float Taken(float ownAge)
        {
            var node = new GossipNode("r", learner.Initial(), 30, 4);
            var m = SwarmMessage.Decode(new GossipNode("s", sent, 30, 4).Message(learner, ExchangeCodec.Float32, 0), learner.ModelId, learner.ParameterCount);
            node.Receive(m, learner, data, [], new GossipOptions(new LocalTraining(), ExchangeCodec.Float32, OwnAge: ownAge), new Rng(1));
            Assert.Equal(30, node.Age); // the merged model is as old as the older of the two
            return node.Weights[5] - learner.InitialWeights[5];
        }
        Assert.Equal(0.5f, Taken(1), 5); // 30 / (30 + 30)
        Assert.Equal(0.8f, Taken(0.25f), 5); // 30 / (7.5 + 30)
        Assert.Throws<ColdmindException>(() => new GossipOptions(new LocalTraining(), ExchangeCodec.Float32, OwnAge: 0).Validate());
        Assert.Throws<ColdmindException>(() => new GossipOptions(new LocalTraining(), ExchangeCodec.Float32, OwnAge: 1.5f).Validate());
    }

    [Fact]
    public void A_node_answers_with_the_running_average_of_the_models_it_received_and_trains_a_working_copy()
    {
        var learner = new LocalLearner(64, [8], 10, 3);
        var data = BuiltinData.Load("digits").Train;
        var examples = Enumerable.Range(0, 64).ToArray();
        var options = new GossipOptions(new LocalTraining(), ExchangeCodec.Float32, Average: 0.6f);
        var node = new GossipNode("a", learner.Initial(), 10, 4);
        var received = new List<float[]>();
        var rng = new Rng(1);
        for (int k = 0; k < 4; k++)
        {
            var sent = learner.Initial();
            for (int i = 0; i < sent.Length; i++) sent[i] += 0.5f * (k + 1) * (i % 3 - 1);
            var message = SwarmMessage.Decode(new GossipNode("b", sent, 30 * (k + 1), 4).Message(learner, ExchangeCodec.Float32, 0), learner.ModelId, learner.ParameterCount);
            received.Add(sent);
            var merge = node.Weights.ToArray();
            GossipNode.Merge(merge, node.Age, sent, message.Age);
            node.Receive(message, learner, data, examples, options, rng);
            Assert.NotEqual(merge, node.Weights); // the local steps moved the working model
        }
        // each received model weighs its age (30, 60, 90, 120), decayed by 0.6 a message since
        double[] weight = [30 * 0.6 * 0.6 * 0.6, 60 * 0.6 * 0.6, 90 * 0.6, 120];
        for (int i = 0; i < node.Answer.Length; i++)
        {
            double expected = 0;
            for (int k = 0; k < 4; k++) expected += weight[k] * received[k][i];
            Assert.Equal(expected / weight.Sum(), node.Answer[i], 1e-5f);
        }
        Assert.Equal(weight.Sum(), node.AnswerWeight, 1e-4);
        var answer = node.Answer.ToArray();
        node.Restore(learner.Initial(), answer, null, 5, 4, 0);
        Assert.Equal(answer, node.Answer);
        Assert.Throws<ColdmindException>(() => node.Restore(learner.Initial(), answer, null, 5, -1, 0));
        Assert.Throws<ColdmindException>(() => node.Restore(learner.Initial(), answer, null, 5, double.NaN, 0));
        Assert.Throws<ColdmindException>(() => node.Restore(learner.Initial(), answer, new float[3], 5, 4, 0));
        Assert.Throws<ColdmindException>(() => new GossipOptions(new LocalTraining(), ExchangeCodec.Float32, Average: 1f).Validate());
        Assert.Throws<ColdmindException>(() => new GossipOptions(new LocalTraining(), ExchangeCodec.Float32, Average: float.NaN).Validate());
    }

    [Fact]
    public void A_token_account_saves_wakes_spends_them_forwarding_and_never_sends_more_than_a_message_a_wake()
    {
        var rng = new Rng(7);
        var node = new GossipNode("a", [0f], 0, 4);
        node.View.Merge([new PeerDescriptor("b", 0)]);
        var plain = new GossipOptions(new LocalTraining(), ExchangeCodec.Float32);
        Assert.True(node.Wakes(plain));
        Assert.False(node.Forwards(plain, rng));
        var account = plain with { Tokens = 4 };
        for (int k = 1; k <= 4; k++)
        {
            Assert.False(node.Wakes(account)); // saving up
            Assert.Equal(k, node.Tokens);
        }
        Assert.True(node.Wakes(account)); // full: the wake sends
        Assert.Equal(4, node.Tokens);
        Assert.True(node.Forwards(account, rng)); // a full account forwards for sure
        Assert.Equal(3, node.Tokens);

        int wakes = 5, sent = 2, forwardsAtFull = 0, receivesAtFull = 0;
        for (int e = 0; e < 20_000; e++)
        {
            if (rng.NextDouble() < 0.5)
            {
                wakes++;
                if (node.Wakes(account)) sent++;
            }
            else
            {
                bool full = node.Tokens == 4;
                bool forwarded = node.Forwards(account, rng);
                if (forwarded) sent++;
                if (full) { receivesAtFull++; forwardsAtFull += forwarded ? 1 : 0; }
            }
            Assert.InRange(node.Tokens, 0, 4);
        }
        Assert.Equal(wakes, sent + node.Tokens); // every message was paid for by a wake; the rest are saved
        Assert.Equal(receivesAtFull, forwardsAtFull);

        var empty = new GossipNode("c", [0f], 0, 4);
        empty.View.Merge([new PeerDescriptor("b", 0)]);
        Assert.False(empty.Forwards(account, rng));
        var alone = new GossipNode("d", [0f], 0, 4);
        alone.Restore([0f], [0f], null, 0, 0, 4);
        Assert.False(alone.Forwards(account, rng)); // no peer to forward to: the token stays
        Assert.Equal(4, alone.Tokens);
        Assert.Throws<ColdmindException>(() => alone.Restore([0f], [0f], null, 0, 0, -1));
        Assert.Throws<ColdmindException>(() => (plain with { Tokens = -1 }).Validate());
        Assert.Throws<ColdmindException>(() => (plain with { Tokens = GossipOptions.MaxTokens + 1 }).Validate());
    }

    [Theory]
    [InlineData("ternary")]
    [InlineData("int8")]
    [InlineData("sign")]
    [InlineData("entropy:1.88")]
    public void Gossip_messages_carry_what_earlier_ones_left_out_so_their_mean_tends_to_the_model(string codec)
    {
        var learner = new LocalLearner(64, [8], 10, 3);
        var c = ExchangeCodec.Parse(codec);
        var model = learner.Initial();
        var rng = new Rng(5);
        for (int i = 0; i < model.Length; i++) model[i] += 0.3f * rng.NextNormal();
        var target = new float[model.Length];
        TensorPrimitives.Subtract(model, learner.InitialWeights, target);
        double Error(bool feedback, int messages)
        {
            var node = new GossipNode("a", model.ToArray(), 10, 4);
            var sum = new float[model.Length];
            for (int k = 0; k < messages; k++)
            {
                var bytes = node.Message(learner, c, 0);
                TensorPrimitives.Add(sum, SwarmMessage.Decode(bytes, learner.ModelId, learner.ParameterCount).DenseValues(), sum);
                if (!feedback) node.Restore(node.Weights, node.Answer, null, node.Age, node.AnswerWeight, 0);
            }
            TensorPrimitives.Multiply(sum, 1f / messages, sum);
            return TensorPrimitives.Distance(sum, target) / TensorPrimitives.Norm(target);
        }
        // without feedback every message makes the same error; with it, the residual stays bounded, so the error
        // of the mean of k messages falls like 1/k (ternary's adaptive scale lets the residual grow at first)
        double once = Error(false, 1), without = Error(false, 64), with64 = Error(true, 64), with1024 = Error(true, 1024);
        Assert.Equal(once, without, 1e-6);
        Assert.True(with1024 < with64 / 4 && with1024 < once / 16,
            $"{codec}: the mean of 64 messages is {with64:G3} of the model's norm away, of 1024 {with1024:G3}; one message {once:G3}");
        var sender = new GossipNode("a", model.ToArray(), 10, 4);
        sender.Message(learner, ExchangeCodec.Float32, 0);
        Assert.Null(sender.Feedback);
    }

    [Fact]
    public void A_walk_is_passed_on_a_quiet_node_starts_one_and_other_wakes_send_only_the_view()
    {
        var learner = new LocalLearner(64, [8], 10, 3);
        var data = BuiltinData.Load("digits").Train;
        var examples = Enumerable.Range(0, 64).ToArray();
        var walk = new GossipOptions(new LocalTraining(), ExchangeCodec.Float32, Walk: 3);
        var rng = new Rng(2);
        var node = new GossipNode("a", learner.Initial(), 0, 4);
        Assert.False(node.Forwards(walk, rng)); // no peer to pass a walk on to
        node.View.Merge([new PeerDescriptor("b", 0)]);
        Assert.False(node.Wakes(walk));
        Assert.False(node.Wakes(walk));
        Assert.True(node.Wakes(walk)); // three wakes without a model: the node starts a walk
        Assert.Equal(1, node.WalksStarted);
        Assert.False(node.Wakes(walk));

        var sender = new GossipNode("b", learner.Initial(), 40, 4);
        var model = SwarmMessage.Decode(sender.Message(learner, ExchangeCodec.Float32, 5), learner.ModelId, learner.ParameterCount);
        Assert.True(node.Receive(model, learner, data, examples, walk, rng));
        Assert.True(node.Forwards(walk, rng)); // the walk goes on from here
        Assert.Equal(0, node.Quiet);
        var passed = SwarmMessage.Decode(node.Message(learner, walk, 9), learner.ModelId, learner.ParameterCount);
        Assert.Empty(passed.View); // views travel in view messages, once a node a period, not with every hop
        Assert.NotEmpty(SwarmMessage.Decode(node.Message(learner, walk with { Walk = 0 }, 9), learner.ModelId, learner.ParameterCount).View);
        SwarmMessage.Type Sent(byte[]? message) => SwarmMessage.Decode(message, learner.ModelId, learner.ParameterCount).Kind;
        Assert.Equal(SwarmMessage.Type.View, Sent(node.Wake(learner, walk, 10)));
        Assert.Equal(SwarmMessage.Type.View, Sent(node.Wake(learner, walk, 11)));
        Assert.Equal(SwarmMessage.Type.Gossip, Sent(node.Wake(learner, walk, 12))); // a new walk
        Assert.Equal(2, node.WalksStarted);
        Assert.Null(node.Wake(learner, walk with { Walk = 0, Tokens = 2 }, 13)); // a token account saving up sends nothing

        var bytes = sender.ViewMessage(learner, 7);
        var view = SwarmMessage.Decode(bytes, learner.ModelId, learner.ParameterCount);
        Assert.Equal(SwarmMessage.Type.View, view.Kind);
        Assert.Empty(view.Values);
        var other = new GossipNode("c", learner.Initial(), 0, 4);
        Assert.False(other.Receive(view, learner, data, examples, walk, rng));
        Assert.Equal(learner.Initial(), other.Weights);
        Assert.Contains(new PeerDescriptor("b", 7), other.View.Peers); // the sender, fresh
        Assert.True(bytes.Length < 100, $"a view message of {bytes.Length} bytes");

        // a view message never carries values, and a model message never lacks them
        var stuffed = SwarmMessage.Encode(SwarmMessage.Type.View, learner.ModelId, "b", 0, 0, [], ExchangeCodec.Float32, [1f]);
        Assert.Contains("view message", Assert.Throws<SwarmMessageException>(() => SwarmMessage.Decode(stuffed, learner.ModelId, learner.ParameterCount)).Message);
        var empty = SwarmMessage.Encode(SwarmMessage.Type.Gossip, learner.ModelId, "b", 0, 0, [], ExchangeCodec.Float32, []);
        Assert.Throws<SwarmMessageException>(() => SwarmMessage.Decode(empty, learner.ModelId, learner.ParameterCount));

        other.Restore(learner.Initial(), learner.Initial(), null, 0, 0, 0, quiet: 2);
        Assert.True(other.Wakes(walk)); // quiet for two wakes before it stopped, three with this one
        Assert.Equal(1, other.WalksStarted);
        Assert.Throws<ColdmindException>(() => other.Restore(learner.Initial(), learner.Initial(), null, 0, 0, 0, quiet: -1));
        Assert.Throws<ColdmindException>(() => (walk with { Walk = -1 }).Validate());
        Assert.Throws<ColdmindException>(() => (walk with { Walk = GossipOptions.MaxWalk + 1 }).Validate());
        Assert.Contains("--tokens", Assert.Throws<ColdmindException>(() => (walk with { Tokens = 4 }).Validate()).Message);
    }

    [Fact]
    public void A_paced_node_waits_its_turn_to_pass_a_model_on_and_a_walk_arriving_meanwhile_joins_the_waiting_one()
    {
        var learner = new LocalLearner(64, [8], 10, 3);
        var data = BuiltinData.Load("digits").Train;
        var examples = Enumerable.Range(0, 64).ToArray();
        var paced = new GossipOptions(new LocalTraining(), ExchangeCodec.Float32, Walk: 3, Pace: 2);
        var rng = new Rng(2);
        var node = new GossipNode("a", learner.Initial(), 0, 4);
        node.View.Merge([new PeerDescriptor("b", 0)]);
        SwarmMessage Decode(byte[] m) => SwarmMessage.Decode(m, learner.ModelId, learner.ParameterCount);
        SwarmMessage Walker(double age) => Decode(new GossipNode("b", learner.Initial(), age, 4).Message(learner, paced, 0));
        const double period = 10_000;

        Assert.True(node.Receive(Walker(40), learner, data, examples, paced, rng));
        Assert.Equal(1_000, node.PassAt(paced, rng, 1_000, period)); // it has sent no model yet: the walk goes on once trained
        Assert.True(node.Receive(Walker(400), learner, data, examples, paced, rng));
        Assert.Null(node.PassAt(paced, rng, 1_100, period)); // one is waiting: this walk joins it
        Assert.Equal(1, node.WalksJoined);
        var passed = Decode(node.Pass(learner, paced, 1_000));
        Assert.Equal(node.Age, passed.Age); // both merges and both rounds of local steps went on
        Assert.True(passed.Age > 400);
        Assert.False(node.Passing);

        Assert.True(node.Receive(Walker(40), learner, data, examples, paced, rng));
        Assert.Equal(6_000, node.PassAt(paced, rng, 2_000, period)); // two models a period: half a period after the last
        node.Abandon(); // the node went offline meanwhile: the walk is lost
        Assert.False(node.Passing);
        Assert.True(node.Receive(Walker(40), learner, data, examples, paced, rng));
        Assert.Equal(7_000, node.PassAt(paced, rng, 7_000, period)); // the lost walk was never sent
        node.Pass(learner, paced, 7_000);
        Assert.True(node.Receive(Walker(40), learner, data, examples, paced, rng));
        Assert.Equal(7_100, node.PassAt(paced with { Pace = 0 }, rng, 7_100, period)); // unpaced: as soon as it is trained

        Assert.Contains("--walk", Assert.Throws<ColdmindException>(() => (paced with { Walk = 0 }).Validate()).Message);
        Assert.Throws<ColdmindException>(() => (paced with { Pace = -1 }).Validate());
        Assert.Throws<ColdmindException>(() => (paced with { Pace = double.NaN }).Validate());
        Assert.Throws<ColdmindException>(() => (paced with { Pace = GossipOptions.MaxPace + 1 }).Validate());
    }

    [Fact]
    public void Top_k_gossip_sends_the_values_that_changed_most_since_peers_last_heard_them()
    {
        var learner = new LocalLearner(64, [8], 10, 3);
        var topk = new ExchangeCodec(ExchangeCodec.Kind.TopK, 0.1f);
        var model = learner.Initial();
        var rng = new Rng(6);
        for (int i = 0; i < model.Length; i++) model[i] += 0.3f * rng.NextNormal();
        var node = new GossipNode("a", model.ToArray(), 10, 4);
        int n = learner.ParameterCount, k = (int)MathF.Round(0.1f * n);
        var heard = new int[n];
        // a still model: ten messages of a tenth each carry every value once, as it is (a residual-free top-k
        // would send the same largest tenth ten times)
        for (int m = 0; m < 10; m++)
        {
            var message = SwarmMessage.Decode(node.Message(learner, topk, 0), learner.ModelId, n);
            Assert.Equal(k, message.Indices!.Length);
            for (int j = 0; j < k; j++)
            {
                int at = message.Indices[j];
                heard[at]++;
                Assert.Equal(model[at] - learner.InitialWeights[at], message.Values[j], 1e-6f);
            }
        }
        Assert.True(heard.Count(h => h == 1) >= n - k, $"{heard.Count(h => h == 0)} values never sent, {heard.Count(h => h > 1)} sent twice");
        // a merge moves the model: the values it moved most are the next news
        var peer = model.ToArray();
        for (int i = 0; i < 5; i++) peer[i] += 10f;
        var delta = new float[n];
        TensorPrimitives.Subtract(peer, learner.InitialWeights, delta);
        var news = SwarmMessage.Decode(SwarmMessage.Encode(SwarmMessage.Type.Gossip, learner.ModelId, "b", 10, 0, [], ExchangeCodec.Float32, delta),
            learner.ModelId, n);
        var data = BuiltinData.Digits();
        node.Receive(news, learner, data, [], new GossipOptions(new LocalTraining(), topk), rng);
        var next = SwarmMessage.Decode(node.Message(learner, topk, 0), learner.ModelId, n);
        Assert.Equal([0, 1, 2, 3, 4], next.Indices!.Take(5).ToArray());
        Assert.Equal(model[0] + 5f - learner.InitialWeights[0], next.Values[0], 1e-4f);
    }

    [Fact]
    public void A_newscast_view_keeps_the_freshest_peers_up_to_its_capacity_and_never_itself()
    {
        var view = new NewscastView("me", 3);
        view.Merge([new("a", 1), new("b", 5), new("me", 9), new("c", 2), new("d", 7), new("a", 8)]);
        Assert.Equal(["a", "d", "b"], view.Peers.Select(p => p.Address).ToArray());
        Assert.Equal(8, view.Peers[0].Timestamp);
        view.Remove("d");
        Assert.Equal(2, view.Peers.Count);
        Assert.Equal("me", view.Outgoing(10)[^1].Address);
    }

    [Fact]
    public void Median_and_trimmed_mean_resist_a_poisoned_update_that_moves_the_mean()
    {
        var honest = Enumerable.Range(0, 9).Select(i => ((float[])[1f + 0.01f * i, -1f], 1.0)).ToList();
        var updates = honest.Append(([-1000f, 1000f], 1.0)).ToList();
        var mean = Aggregation.Parse("mean", 0).Combine(updates);
        Assert.True(mean[0] < -90);
        foreach (var rule in new[] { "median", "trimmed:0.2" })
        {
            var robust = Aggregation.Parse(rule, 0).Combine(updates);
            Assert.InRange(robust[0], 1f, 1.1f);
            Assert.InRange(robust[1], -1.01f, -0.99f);
        }
        var clipped = Aggregation.Parse("mean", 1).Combine(updates);
        Assert.InRange(TensorPrimitives.Norm(clipped), 0, 1 + 1e-5f);
        var weighted = Aggregation.Parse("mean", 0).Combine([([0f], 1), ([4f], 3)]);
        Assert.Equal(3f, weighted[0], 6);
    }

    [Fact]
    public void A_huge_penalty_holds_the_weights_at_the_anchor_and_fedprox_slows_the_drift()
    {
        var data = BuiltinData.Digits();
        var learner = LocalLearner.For(data, [16], 1);
        var examples = Enumerable.Range(0, 200).ToArray();
        var anchor = learner.Initial();
        var held = learner.Initial();
        learner.Train(held, data, examples, new LocalTraining(20, 16, 0.1f), new Rng(1), new Penalty(anchor, 1e9f));
        for (int i = 0; i < held.Length; i++) Assert.Equal(anchor[i], held[i], 4);

        float Drift(float mu)
        {
            var w = learner.Initial();
            learner.Train(w, data, examples, new LocalTraining(20, 16, 0.1f), new Rng(1), mu > 0 ? new Penalty(anchor, mu) : null);
            TensorPrimitives.Subtract(w, anchor, w);
            return TensorPrimitives.Norm(w);
        }
        Assert.True(Drift(1f) < Drift(0f));
    }

    [Fact]
    public void Two_pulls_combine_into_one_with_the_same_gradient()
    {
        var rng = new Rng(3);
        float[] Random(float scale) => Enumerable.Range(0, 50).Select(_ => (float)rng.NextDouble() * scale - scale / 2).ToArray();
        var prox = new Penalty(Random(2), 0.3f);
        var importance = Random(4).Select(MathF.Abs).ToArray();
        importance[0] = 0; // a weight EWC leaves free
        var ewc = new Penalty(Random(2), 20f, importance);
        var both = prox.With(ewc);
        var w = Random(6);
        static float Gradient(Penalty p, float w, int i) => p.Strength * (p.Importance?[i] ?? 1f) * (w - p.Anchor[i]);
        for (int i = 0; i < w.Length; i++) Assert.Equal(Gradient(prox, w[i], i) + Gradient(ewc, w[i], i), Gradient(both, w[i], i), 4);
        var nothing = new Penalty(Random(2), 0f).With(new Penalty(Random(2), 0f));
        Assert.All(nothing.Importance!, f => Assert.Equal(0f, f));
        Assert.All(nothing.Anchor, a => Assert.True(float.IsFinite(a)));
    }

    [Theory]
    [InlineData("iid")] [InlineData("dirichlet:0.5")] [InlineData("classes:2")]
    public void A_partition_gives_every_example_to_exactly_one_node(string spec)
    {
        var data = BuiltinData.Digits();
        var shards = Partition.Parse(spec).Split(data, 30, new Rng(4));
        Assert.Equal(30, shards.Length);
        var all = shards.SelectMany(s => s).Order().ToArray();
        Assert.Equal(Enumerable.Range(0, data.Count).ToArray(), all);
        if (spec == "classes:2") Assert.All(shards, s => Assert.True(s.Select(i => data.Labels[i]).Distinct().Count() <= 2));
    }

    [Fact]
    public void A_small_dirichlet_alpha_concentrates_each_node_on_few_classes()
    {
        var data = BuiltinData.Digits();
        double Classes(string spec) => Partition.Parse(spec).Split(data, 20, new Rng(2))
            .Where(s => s.Length > 0)
            .Average(s => s.GroupBy(i => data.Labels[i]).Count(g => g.Count() >= 0.1 * s.Length));
        Assert.True(Classes("dirichlet:0.1") < Classes("dirichlet:100") - 3, $"{Classes("dirichlet:0.1")} vs {Classes("dirichlet:100")}");
        Assert.Throws<ColdmindException>(() => Partition.Parse("dirichlet:-1"));
    }

    [Fact]
    public void Churn_sessions_keep_nodes_offline_the_asked_fraction_and_a_trace_is_followed()
    {
        var churn = Churn.Sessions(0.5, 100);
        var rng = new Rng(3);
        double offline = 0, horizon = 100_000;
        for (int node = 0; node < 50; node++)
        {
            var (on, endless) = churn.Schedule(node, rng);
            var toggles = endless.TakeWhile(t => t < horizon).ToList();
            double last = 0;
            bool state = on;
            foreach (double t in toggles.Append(horizon)) { if (!state) offline += t - last; last = t; state = !state; }
        }
        Assert.InRange(offline / (50 * horizon), 0.45, 0.55);

        using var dir = new TempDir();
        File.WriteAllText(dir.File("trace.csv"), "node,from,until\n1,0,10\n1,5,20\n1,30,40\n");
        var trace = Churn.FromTrace(dir.File("trace.csv"), 4);
        var (online, traced) = trace.Schedule(1, rng);
        Assert.True(online);
        Assert.Equal([20, 30, 40], traced);
        Assert.True(trace.Schedule(2, rng).OnlineAtStart);
        File.WriteAllText(dir.File("bad.csv"), "1,5,2\n");
        Assert.Contains("bad.csv:1", Assert.Throws<ColdmindException>(() => Churn.FromTrace(dir.File("bad.csv"), 4)).Message);
    }
}

public class SwarmSimulatorTests
{
    private static readonly DataSplits Digits = BuiltinData.Load("digits");

    private static SwarmResult Simulate(SwarmOptions o) => new SwarmSimulator(o, Digits.Train, Digits.Test).Run("digits");

    private static readonly SwarmOptions Small = new() { Nodes = 20, Rounds = 40, Local = new LocalTraining(5, 16, 0.2f), EvalNodes = 20, EvalExamples = 200 };

    [Fact]
    public void The_same_seed_gives_the_same_run()
    {
        var a = Simulate(Small with { Churn = Churn.Sessions(0.3, 50), LossRate = 0.1, Codec = ExchangeCodec.Parse("int8") });
        var b = Simulate(Small with { Churn = Churn.Sessions(0.3, 50), LossRate = 0.1, Codec = ExchangeCodec.Parse("int8") });
        Assert.Equal(a.BytesSent, b.BytesSent);
        Assert.Equal(a.FinalNodeAccuracies, b.FinalNodeAccuracies);
        Assert.Equal(a.Curve.Select(p => p.Mean), b.Curve.Select(p => p.Mean));
        Assert.True(a.MessagesLost > 0);
    }

    [Theory]
    [InlineData("gossip", "iid", 0.0, 0.88)]
    [InlineData("fedavg", "iid", 0.0, 0.88)]
    [InlineData("gossip", "dirichlet:0.5", 0.5, 0.65)]
    [InlineData("fedavg", "dirichlet:0.5", 0.5, 0.65)]
    public void Both_protocols_learn_digits_across_nodes_with_non_iid_data_and_churn(string protocol, string partition, double churn, double floor)
    {
        var r = Simulate(Small with { Protocol = protocol, Partition = Partition.Parse(partition), Churn = Churn.Sessions(churn, 100), Rounds = protocol == "gossip" ? 60 * (churn > 0 ? 2 : 1) : 150 });
        Assert.True(r.FinalMeanAccuracy > floor, $"{protocol} {partition} churn {churn}: {r.FinalMeanAccuracy:P2}");
        Assert.True(r.Curve[0].Mean < 0.3, "the nodes start untrained");
        Assert.True(r.BytesSent > 0 && r.Messages > 0);
    }

    [Fact]
    public void A_gossip_message_to_an_offline_peer_is_refused_before_it_is_sent_and_every_sent_byte_includes_its_http_framing()
    {
        var o = Small with { Churn = Churn.Sessions(0.5, 50), Codec = ExchangeCodec.Parse("int8") };
        var r = Simulate(o);
        Assert.True(r.ConnectionsRefused > 0);
        // messages lost are those whose receiver went offline in flight: far fewer than the refused connections
        Assert.True(r.MessagesLost < r.ConnectionsRefused / 4, $"{r.MessagesLost} lost, {r.ConnectionsRefused} refused");
        var learner = LocalLearner.For(Digits.Train, o.Hidden, o.Seed);
        int body = SwarmMessage.Encode(SwarmMessage.Type.Gossip, 0, "n0", 0, 0, [], o.Codec, new float[learner.ParameterCount]).Length;
        double perMessage = (double)r.BytesSent / r.Messages;
        Assert.InRange(perMessage, body + HttpFraming.Gossip, body + HttpFraming.Gossip + (o.ViewSize + 1) * 12);
    }

    [Fact]
    public void Int8_exchange_sends_a_quarter_of_the_bytes_and_learns_as_well()
    {
        var f32 = Simulate(Small);
        var int8 = Simulate(Small with { Codec = ExchangeCodec.Parse("int8") });
        Assert.InRange((double)int8.BytesSent / f32.BytesSent, 0.25, 0.32);
        Assert.InRange(int8.FinalMeanAccuracy, f32.FinalMeanAccuracy - 0.03, 1);
    }

    [Fact]
    public void Entropy_coded_exchange_learns_in_both_protocols()
    {
        var entropy = ExchangeCodec.Parse("entropy:1.875");
        var gossip = Simulate(Small with { Codec = entropy, Walk = 4 });
        var fedavg = Simulate(Small with { Protocol = "fedavg", Codec = entropy, Rounds = 150 });
        Assert.True(gossip.FinalMeanAccuracy > 0.88 && fedavg.FinalMeanAccuracy > 0.88, $"walks {gossip.FinalMeanAccuracy:P2}, FedAvg {fedavg.FinalMeanAccuracy:P2}");
        Assert.Equal(0, gossip.MessagesRejected + fedavg.MessagesRejected);
    }

    [Fact]
    public void FedAvg_sends_the_global_model_in_the_downlink_codec_it_is_given()
    {
        var o = Small with { Protocol = "fedavg", Codec = ExchangeCodec.Parse("ternary"), Rounds = 60 };
        var int8 = Simulate(o);
        var entropy = Simulate(o with { Downlink = FedAvgCoordinator.Downlink("entropy:4", o.Codec) });
        Assert.Equal("int8", o.GlobalCodec.ToString());
        // a round sends ten global models and ten updates: int8 is 8.25 bits a value, entropy:4 at most 4 and its table
        Assert.InRange((double)entropy.BytesSent / int8.BytesSent, 0.4, 0.75);
        Assert.True(entropy.FinalMeanAccuracy > int8.FinalMeanAccuracy - 0.03, $"{entropy.FinalMeanAccuracy:P2} against int8's {int8.FinalMeanAccuracy:P2}");
        Assert.Throws<ColdmindException>(() => FedAvgCoordinator.Downlink("topk:0.1", o.Codec));
    }

    [Fact]
    public void A_median_coordinator_survives_byzantine_clients_that_wreck_the_mean()
    {
        var attacked = Small with { Protocol = "fedavg", Rounds = 100, Byzantine = 0.2, ClientFraction = 0.5 };
        var mean = Simulate(attacked);
        var median = Simulate(attacked with { Aggregation = Aggregation.Parse("median", 0) });
        Assert.True(median.FinalMeanAccuracy > 0.85, $"median: {median.FinalMeanAccuracy:P2}");
        Assert.True(mean.FinalMeanAccuracy < median.FinalMeanAccuracy - 0.2, $"mean {mean.FinalMeanAccuracy:P2} vs median {median.FinalMeanAccuracy:P2}");
    }

    [Fact]
    public void Gossip_with_a_token_account_learns_and_sends_no_more_than_a_message_a_node_a_period()
    {
        var o = Small with { Partition = Partition.Parse("dirichlet:0.5"), Rounds = 60 };
        var plain = Simulate(o);
        var tokens = Simulate(o with { Tokens = 5 });
        Assert.True(tokens.FinalMeanAccuracy > 0.8, $"with tokens: {tokens.FinalMeanAccuracy:P2}");
        Assert.InRange(tokens.Messages, o.Nodes * (o.Rounds - 5 - 1), o.Nodes * o.Rounds);
        Assert.InRange(plain.Messages, o.Nodes * (o.Rounds - 1), o.Nodes * o.Rounds);
        // a wake sends only from a full account, so most of the traffic is models forwarded on arrival
        Assert.InRange(tokens.MessagesForwarded, tokens.Messages / 2, tokens.Messages);
        Assert.Equal(0, plain.MessagesForwarded);
    }

    [Fact]
    public void Walks_learn_and_outlive_churn_and_loss_because_quiet_nodes_start_new_ones()
    {
        var o = Small with { Partition = Partition.Parse("dirichlet:0.5"), Churn = Churn.Sessions(0.5, 50), LossRate = 0.2, Rounds = 120, Walk = 4 };
        var r = Simulate(o);
        Assert.True(r.FinalMeanAccuracy > 0.65, $"walks with churn and loss: {r.FinalMeanAccuracy:P2}");
        // a fifth of the messages is lost and half the nodes are away at any time: walks die young, and quiet nodes
        // keep starting them to the end
        var half = Simulate(o with { Rounds = 60 });
        Assert.True(half.WalksStarted > 5 && r.WalksStarted > 1.5 * half.WalksStarted, $"{half.WalksStarted} walks started in 60 periods, {r.WalksStarted} in 120");
        Assert.True(r.Curve[^1].Mean > half.Curve[^1].Mean, "the second half still learns");
        Assert.True(r.MessagesForwarded > r.WalksStarted, $"{r.MessagesForwarded} hops for {r.WalksStarted} walks");
        // on reliable links a few walks carry the learning, each many hops long
        var calm = Simulate(o with { Churn = Churn.None, LossRate = 0, Rounds = 20 });
        Assert.InRange(calm.WalksStarted, 1, o.Nodes);
        Assert.True(calm.MessagesForwarded > 20 * calm.WalksStarted, $"{calm.MessagesForwarded} hops for {calm.WalksStarted} walks");
        Assert.True(calm.FinalMeanAccuracy > 0.8, $"walks without churn: {calm.FinalMeanAccuracy:P2}");
        Assert.Equal(0, Simulate(Small).WalksStarted);
    }

    [Fact]
    public void A_pace_bounds_the_models_a_node_sends_a_period_and_paced_walks_still_learn()
    {
        var o = Small with { Partition = Partition.Parse("dirichlet:0.5"), Rounds = 30, Walk = 4 };
        var free = Simulate(o);
        var paced = Simulate(o with { Pace = 1 });
        // at one model a period, a node passes on at most one model a period; unpaced, a walk hops as soon as it is trained
        int bound = o.Nodes * (o.Rounds + 1);
        Assert.InRange(paced.MessagesForwarded, 1, bound);
        Assert.True(free.MessagesForwarded > bound, $"{free.MessagesForwarded} models passed on unpaced in {o.Rounds} periods of {o.Nodes} nodes");
        Assert.True(paced.WalksJoined > 0, "walks meet at busy nodes and go on as one");
        Assert.True(paced.FinalMeanAccuracy > 0.8, $"paced walks: {paced.FinalMeanAccuracy:P2}");
    }

    [Fact]
    public void A_byte_budget_stops_the_run()
    {
        var r = Simulate(Small with { MaxBytes = 200_000 });
        Assert.InRange(r.BytesSent, 200_000, 200_000 + 2 * 10_000);
        Assert.True(r.RoundsDone < Small.Rounds);
    }

    [Theory]
    [InlineData("gossip", 100)]
    [InlineData("fedavg", 40)]
    public void A_swarm_learning_a_task_sequence_forgets_the_first_task_without_a_memory_and_keeps_it_with_replay(string protocol, int rounds)
    {
        var o = Small with { Protocol = protocol, Rounds = rounds, Partition = Partition.Parse("dirichlet:0.5"), Tasks = [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]] };
        var plain = Simulate(o);
        var replay = Simulate(o with { Memory = new MemoryOptions(Replay: 50) });
        foreach (var r in new[] { plain, replay })
        {
            Assert.Equal(2, r.TaskAccuracy.Count);
            Assert.True(r.TaskAccuracy[0][0] > 0.85, $"{protocol}: task 1 learnt to {r.TaskAccuracy[0][0]:P1}");
            Assert.True(r.TaskAccuracy[0][1] < 0.05, "nothing of task 2 is known before it is learnt");
            Assert.True(r.TaskAccuracy[1][1] > 0.75, $"{protocol}: task 2 learnt to {r.TaskAccuracy[1][1]:P1}");
            Assert.Equal(2 * rounds, r.RoundsDone);
        }
        Assert.Equal(plain.TaskAccuracy[0], replay.TaskAccuracy[0]); // the memory does nothing until there is an earlier task
        Assert.True(plain.TaskAccuracy[1][0] < 0.2, $"{protocol} without memory keeps {plain.TaskAccuracy[1][0]:P1} of task 1");
        Assert.True(replay.TaskAccuracy[1][0] > 0.7, $"{protocol} with replay keeps {replay.TaskAccuracy[1][0]:P1} of task 1");
        Assert.True(replay.StateBytesPerNode > plain.StateBytesPerNode + 36 * 64 * 4, "the remembered examples are a node's state");
    }

    [Fact]
    public void Each_task_of_a_sequence_has_the_byte_budget_and_a_memory_needs_a_sequence()
    {
        var r = Simulate(Small with { MaxBytes = 100_000, Tasks = [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]] });
        Assert.Equal(3, r.TaskAccuracy.Count);
        Assert.InRange(r.BytesSent, 300_000, 300_000 + 3 * 2 * 10_000);
        Assert.Contains("task sequence", Assert.Throws<ColdmindException>(() => Simulate(Small with { Memory = new MemoryOptions(Replay: 10) })).Message);
        Assert.Contains("names class 10", Assert.Throws<ColdmindException>(() => Simulate(Small with { Tasks = [[0, 1], [5, 10]] })).Message);
    }

    [Fact]
    public void Swarm_cli_prints_the_promised_json_and_refuses_bad_flags()
    {
        using var dir = new TempDir();
        var (exit, stdout, stderr) = CliTests.Run("swarm", "--nodes", "12", "--rounds", "10", "--protocol", "gossip,fedavg", "--lr", "0.2", "--json", "--report", dir.File("r.html"));
        Assert.True(exit == 0, stderr);
        using var json = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.Equal(12, json.RootElement.GetProperty("nodes").GetInt32());
        var runs = json.RootElement.GetProperty("runs").EnumerateArray().ToArray();
        Assert.Equal(2, runs.Length);
        foreach (var run in runs)
        {
            Assert.InRange(run.GetProperty("final_mean_accuracy").GetDouble(), 0.3, 1);
            Assert.True(run.GetProperty("bytes_sent").GetInt64() > 0);
        }
        // the second run stops at the first run's byte budget
        Assert.InRange(runs[1].GetProperty("bytes_sent").GetInt64(), runs[0].GetProperty("bytes_sent").GetInt64(), runs[0].GetProperty("bytes_sent").GetInt64() * 11 / 10);
        Assert.Contains("<svg", File.ReadAllText(dir.File("r.html")));

        (exit, stdout, stderr) = CliTests.Run("swarm", "--nodes", "12", "--rounds", "10", "--task", "0-4", "--task", "5-9", "--replay", "20", "--json", "--report", dir.File("t.html"));
        Assert.True(exit == 0, stderr);
        using var tasks = System.Text.Json.JsonDocument.Parse(stdout);
        var matrix = tasks.RootElement.GetProperty("task_accuracy").EnumerateArray().Select(row => row.EnumerateArray().Select(a => a.GetDouble()).ToArray()).ToArray();
        Assert.Equal(2, matrix.Length);
        Assert.All(matrix, row => Assert.Equal(2, row.Length));
        Assert.Equal(20, tasks.RootElement.GetProperty("replay").GetInt32());
        Assert.Contains("classes 5-9", File.ReadAllText(dir.File("t.html")));

        (exit, stdout, stderr) = CliTests.Run("swarm", "--nodes", "12", "--rounds", "10", "--walk", "3", "--pace", "2", "--json");
        Assert.True(exit == 0, stderr);
        using var walks = System.Text.Json.JsonDocument.Parse(stdout);
        Assert.True(walks.RootElement.GetProperty("walks_started").GetInt64() > 0);
        Assert.Equal(System.Text.Json.JsonValueKind.Number, walks.RootElement.GetProperty("walks_joined").ValueKind);
        Assert.Equal(3, walks.RootElement.GetProperty("walk").GetInt32());
        Assert.Equal(2, walks.RootElement.GetProperty("pace").GetDouble());

        foreach (var (args, expected) in new (string[], string)[]
        {
            (["--nodes", "1"], "--nodes"), (["--partition", "dirichlet:0"], "--partition"), (["--compress", "topk:2"], "--compress"),
            (["--protocol", "raft"], "--protocol"), (["--churn", "1"], "--churn"), (["--aggregate", "trimmed:0.7"], "--aggregate"),
            (["--task", "0-4", "--task", "5-12"], "--task"), (["--replay", "20"], "--replay"), (["--task", "0-4", "--task", "5-9", "--ewc", "-1"], "--ewc"),
            (["--walk", "-2"], "--walk"), (["--walk", "3", "--tokens", "5"], "--walk"), (["--pace", "2"], "--pace"), (["--walk", "3", "--pace", "-1"], "--pace"),
        })
        {
            var (badExit, _, badErr) = CliTests.Run(["swarm", .. args]);
            Assert.Equal(1, badExit);
            Assert.Contains(expected, badErr);
            Assert.Single(badErr.Trim().Split('\n'));
        }
    }
}

public class ContinualLearningTests
{
    [Fact]
    public void Replay_keeps_much_of_the_first_task_that_plain_fine_tuning_forgets_and_ewc_keeps_more()
    {
        var splits = BuiltinData.Load("digits");
        var first = new HashSet<int> { 0, 1, 2, 3, 4 };
        var train = splits.Train;
        var a = Enumerable.Range(0, train.Count).Where(i => first.Contains(train.Labels[i])).ToArray();
        var b = Enumerable.Range(0, train.Count).Where(i => !first.Contains(train.Labels[i])).ToArray();
        var results = ContinualLearning.Run(LocalLearner.For(train, [32], 0), train, a, b, splits.Test, first,
            new ContinualOptions(Epochs: 5, BatchSize: 16, LearningRate: 0.1f, EwcStrength: 100, ReplayExamples: 100, FisherExamples: 200)).ToDictionary(r => r.Method);
        string all = string.Join("; ", results.Values.Select(r => $"{r.Method}: {r.FirstBefore:P1} → {r.FirstAfter:P1}, second {r.Second:P1}, both {r.Both:P1}"));
        Assert.True(results["fine-tuning"].FirstBefore > 0.9, all);
        Assert.True(results["fine-tuning"].Forgetting > 0.5, all);
        Assert.True(results["replay"].Forgetting < results["fine-tuning"].Forgetting - 0.5, all);
        Assert.True(results["replay"].Both > results["fine-tuning"].Both + 0.3, all);
        Assert.True(results["EWC + replay"].Forgetting < results["replay"].Forgetting, all); // the Fisher pull keeps more of task 1
    }
}

public class DeviceMemoryTests
{
    private static readonly DataSplits Digits = BuiltinData.Load("digits");

    private static int[] OfClasses(Dataset d, int from, int to) => Enumerable.Range(0, d.Count).Where(i => d.Labels[i] >= from && d.Labels[i] <= to).ToArray();

    /// <summary>The memory's file written (after <paramref name="corrupt"/> changed what it holds) and read back.</summary>
    private static DeviceMemory RoundTrip(TempDir dir, LocalLearner learner, DeviceMemory memory, MemoryOptions o, Action<List<(string, float[])>, Dictionary<string, string>>? corrupt = null)
    {
        var (tensors, meta) = memory.ToCheckpoint();
        var models = tensors.ToList();
        var all = meta.ToDictionary();
        corrupt?.Invoke(models, all);
        SwarmCheckpoint.Write(dir.File("m.memory"), "memory", learner, models, all);
        return DeviceMemory.Parse(SwarmCheckpoint.Read(dir.File("m.memory"), "memory", "device memory", learner), o, Digits.Train.FeatureCount, Digits.Train.Classes);
    }

    [Fact]
    public void New_data_begins_a_generation_the_reservoir_stays_uniform_and_the_memory_survives_a_checkpoint()
    {
        using var dir = new TempDir();
        var train = Digits.Train;
        var learner = LocalLearner.For(train, [16], 0);
        var o = new MemoryOptions(Replay: 200, Ewc: 50);
        var memory = new DeviceMemory(o, train.FeatureCount);
        int[] first = OfClasses(train, 0, 4), second = OfClasses(train, 5, 9);
        var rng = new Rng(1);

        memory.Begin(train, first, learner, learner.Initial(), rng);
        Assert.Equal((1, 200, (long)first.Length, 0), (memory.Generation, memory.Count, memory.Seen, memory.Earlier));
        Assert.Null(memory.Penalty);
        var (data, examples, replay) = memory.Local(train, first);
        Assert.Equal(first.Length, examples.Length);
        Assert.Empty(replay); // nothing earlier to replay yet

        var model = learner.Initial();
        learner.Train(model, train, first, new LocalTraining(200, 16, 0.1f), new Rng(2));
        memory.Begin(train, second, learner, model, rng);
        Assert.Equal(2, memory.Generation);
        // algorithm R over both data sets: each example is kept with probability 200 / (n1 + n2)
        double expected = 200.0 * first.Length / (first.Length + second.Length);
        Assert.InRange(memory.Earlier, expected - 30, expected + 30);
        var penalty = memory.Penalty!;
        Assert.Equal(model, penalty.Anchor);
        Assert.Equal(1.0, penalty.Importance!.Average(), 3); // normalised Fisher
        Assert.Equal(50f, penalty.Strength);

        (data, examples, replay) = memory.Local(train, second);
        Assert.Equal(second.Length + memory.Earlier, data.Count);
        Assert.All(examples, i => Assert.InRange(data.Labels[i], 5, 9));
        Assert.All(replay, i => Assert.InRange(data.Labels[i], 0, 4)); // only earlier data is replayed
        Assert.Equal(memory.Earlier, replay.Length);

        var restored = RoundTrip(dir, learner, memory, o);
        Assert.Equal((memory.Generation, memory.Seen, memory.Earlier), (restored.Generation, restored.Seen, restored.Earlier));
        Assert.Equal(memory.Remembered(train).Features, restored.Remembered(train).Features);
        Assert.Equal(memory.Remembered(train).Labels, restored.Remembered(train).Labels);
        Assert.Equal(memory.Penalty!.Importance, restored.Penalty!.Importance);
        var smaller = RoundTrip(dir, learner, memory, o with { Replay = 50, Ewc = 0 });
        Assert.Equal(50, smaller.Count);
        var larger = RoundTrip(dir, learner, memory, o with { Replay = 400 });
        larger.Begin(train, first, learner, model, rng); // a reservoir grown on restart fills up first
        Assert.Equal((400, 3), (larger.Count, larger.Generation));
    }

    [Fact]
    public void Each_generation_is_written_once_beside_the_checkpoint_and_the_last_one_is_removed_only_once_the_checkpoint_refers_to_the_next()
    {
        using var dir = new TempDir();
        var train = Digits.Train;
        var learner = LocalLearner.For(train, [16], 0);
        var o = new MemoryOptions(Replay: 50);
        var memory = new DeviceMemory(o, train.FeatureCount);
        string path = dir.File("device.st");
        SwarmCheckpoint Checkpoint(DeviceMemory m)
        {
            var (key, value) = m.Persist(path, learner);
            SwarmCheckpoint.Write(path, "device", learner, [], new Dictionary<string, string> { [key] = value });
            return SwarmCheckpoint.Read(path, "device", "device", learner);
        }

        memory.Begin(train, OfClasses(train, 0, 4), learner, learner.Initial(), new Rng(1));
        Checkpoint(memory);
        memory.Referenced(path);
        string first = DeviceMemory.FileFor(path, 1);
        Assert.True(File.Exists(first));
        File.Delete(first);
        Checkpoint(memory); // the same generation: not written again
        Assert.False(File.Exists(first));
        var missing = Assert.Throws<ColdmindException>(() => DeviceMemory.FromCheckpoint(SwarmCheckpoint.Read(path, "device", "device", learner), path, o, learner, train.FeatureCount, train.Classes));
        Assert.Contains("missing", missing.Message);

        memory = new DeviceMemory(o, train.FeatureCount);
        memory.Begin(train, OfClasses(train, 0, 4), learner, learner.Initial(), new Rng(1));
        Checkpoint(memory);
        memory.Begin(train, OfClasses(train, 5, 9), learner, learner.Initial(), new Rng(1));
        memory.Persist(path, learner); // a crash before the checkpoint refers to generation 2 keeps generation 1 readable
        var before = DeviceMemory.FromCheckpoint(SwarmCheckpoint.Read(path, "device", "device", learner), path, o, learner, train.FeatureCount, train.Classes)!;
        Assert.Equal(1, before.Generation);
        var checkpoint = Checkpoint(memory);
        memory.Referenced(path);
        Assert.False(File.Exists(first));
        var after = DeviceMemory.FromCheckpoint(checkpoint, path, o, learner, train.FeatureCount, train.Classes)!;
        Assert.Equal((2, memory.Earlier), (after.Generation, after.Earlier));
        Assert.Equal(memory.Remembered(train).Features, after.Remembered(train).Features);
        Assert.Throws<ColdmindException>(() => DeviceMemory.FromCheckpoint(checkpoint, path, new MemoryOptions(), learner, train.FeatureCount, train.Classes));
    }

    [Fact]
    public async Task A_node_restarted_on_the_same_data_keeps_its_generation_and_on_new_data_begins_the_next()
    {
        using var dir = new TempDir();
        var train = Digits.Train;
        var learner = LocalLearner.For(train, [16], 0);
        string checkpoint = dir.File("node.st");
        int port;
        using (var l = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0)) { l.Start(); port = ((IPEndPoint)l.LocalEndpoint).Port; }
        var auth = new MessageAuth(TestKeys.Secret(), $"127.0.0.1:{port}");
        var options = new NodeOptions($"127.0.0.1:{port}", ["127.0.0.1:1"], new GossipOptions(new LocalTraining(), ExchangeCodec.Float32), TimeSpan.FromMilliseconds(10),
            Cycles: 1, checkpoint, MaxMessageBytes: 1 << 20, Linger: TimeSpan.Zero, new MemoryOptions(Replay: 50));
        async Task<(string Log, int Generation)> Start(int[] shard)
        {
            var log = new System.Text.StringBuilder();
            await using (var node = await SwarmNode.StartAsync(options, learner, train, shard, auth, line => log.AppendLine(line)))
                await node.RunAsync(Digits.Test);
            return (log.ToString(), int.Parse(Safetensors.Read(checkpoint).Metadata["coldmind.swarm.memory_generation"], System.Globalization.CultureInfo.InvariantCulture));
        }
        int[] first = OfClasses(train, 0, 4), second = OfClasses(train, 5, 9);
        Assert.Equal(1, (await Start(first)).Generation);
        var again = await Start(first); // a restart (after a crash, say) on the same data
        Assert.Equal(1, again.Generation);
        Assert.Contains("resumed from", again.Log);
        Assert.DoesNotContain("new data", again.Log);
        var moved = await Start(second);
        Assert.Equal(2, moved.Generation);
        Assert.Contains("new data", moved.Log);
        Assert.Contains("memory: generation 2; replaying", moved.Log);
    }

    [Fact]
    public void A_checkpoint_with_a_bad_memory_is_refused_in_one_line()
    {
        using var dir = new TempDir();
        var train = Digits.Train;
        var learner = LocalLearner.For(train, [16], 0);
        var o = new MemoryOptions(Replay: 20);
        var memory = new DeviceMemory(o, train.FeatureCount);
        memory.Begin(train, OfClasses(train, 0, 4), learner, learner.Initial(), new Rng(1));
        void Refused(string expected, Action<List<(string Name, float[] Values)>, Dictionary<string, string>> corrupt)
        {
            var e = Assert.Throws<ColdmindException>(() => RoundTrip(dir, learner, memory, o, corrupt));
            Assert.Contains(expected, e.Message);
        }
        Refused("memory_labels", (t, _) => t[1].Values[3] = 10);
        Refused("memory_labels", (t, _) => t[1].Values[3] = 1.5f);
        Refused("memory_generations", (t, _) => t[2].Values[0] = 2);
        Refused("memory_inputs", (t, _) => t[0] = (t[0].Name, t[0].Values[..^1]));
        Refused("memory_inputs", (t, _) => t[0].Values[5] = float.NaN);
        Refused("memory_seen", (_, m) => m["memory_seen"] = "3");
        Assert.Throws<ColdmindException>(() => new MemoryOptions(Replay: -1).Validate());
        Assert.Throws<ColdmindException>(() => new MemoryOptions(Ewc: float.NaN).Validate());
    }
}

/// <summary>Eight processes load both cores: they run alone, so other tests' servers are not starved into timeouts.</summary>
[CollectionDefinition("Node processes", DisableParallelization = true)]
public class NodeProcessCollection;

/// <summary>Real `coldmind node` processes on loopback.</summary>
[Collection("Node processes")]
public class SwarmNodeProcessTests
{
    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Nodes_with_a_token_account_forward_over_http_and_checkpoint_their_tokens()
    {
        using var dir = new TempDir();
        const int count = 3, cycles = 30, account = 3;
        var summaries = await InProcessSwarm(dir, new GossipOptions(new LocalTraining(), ExchangeCodec.Parse("ternary"), Tokens: account), count, cycles);
        long sent = summaries.Sum(s => s.Sent);
        Assert.True(sent <= count * cycles, $"{sent} messages for {count * cycles} wakes");
        Assert.All(summaries, s => Assert.True(s.Received > 0 && s.Forwarded > 0 && s.Forwarded <= s.Received, $"{s.Address}: received {s.Received}, forwarded {s.Forwarded}"));
        Assert.All(summaries, s => Assert.True(s.TestAccuracy > 0.5, $"{s.Address}: {s.TestAccuracy:P1}"));
        foreach (int i in Enumerable.Range(0, count))
            Assert.InRange(int.Parse(Safetensors.Read(dir.File($"n{i}.st")).Metadata["coldmind.swarm.tokens"], System.Globalization.CultureInfo.InvariantCulture), 0, account);
    }

    [Fact]
    public async Task Walks_travel_over_http_each_wake_sends_the_view_or_a_new_walk_and_the_quiet_count_is_checkpointed()
    {
        using var dir = new TempDir();
        const int count = 4, cycles = 40, quiet = 3;
        var gossip = new GossipOptions(new LocalTraining(), ExchangeCodec.Parse("ternary"), Walk: quiet);
        var summaries = await InProcessSwarm(dir, gossip, count, cycles);
        // every wake sends one message, the view or a new walk, and every pass one model
        Assert.Equal(count * cycles + summaries.Sum(s => s.Forwarded), summaries.Sum(s => s.Sent + s.SendFailures));
        Assert.True(summaries.Sum(s => s.WalksStarted) > 0);
        Assert.All(summaries, s => Assert.True(s.Received > 0 && s.Forwarded > 0 && s.Forwarded <= s.Received, $"{s.Address}: received {s.Received}, forwarded {s.Forwarded}"));
        Assert.All(summaries, s => Assert.True(s.TestAccuracy > 0.5, $"{s.Address}: {s.TestAccuracy:P1}"));
        foreach (int i in Enumerable.Range(0, count))
        {
            var meta = Safetensors.Read(dir.File($"n{i}.st")).Metadata;
            Assert.InRange(int.Parse(meta["coldmind.swarm.quiet"], System.Globalization.CultureInfo.InvariantCulture), 0, quiet - 1);
        }
    }

    [Fact]
    public async Task A_paced_node_passes_on_at_most_its_pace_of_models_over_http()
    {
        using var dir = new TempDir();
        const int count = 4, cycles = 40;
        var gossip = new GossipOptions(new LocalTraining(), ExchangeCodec.Parse("ternary"), Walk: 3, Pace: 1);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var summaries = await InProcessSwarm(dir, gossip, count, cycles);
        double periods = clock.Elapsed / InProcessPeriod;
        // a pass comes a period after the node's last model at the soonest; walks that meet at a node go on as one
        Assert.All(summaries, s => Assert.True(s.Forwarded <= periods + 1, $"{s.Address}: {s.Forwarded} models passed on in {periods:F0} periods"));
        Assert.True(summaries.Sum(s => s.WalksJoined) > 0, "walks joined at busy nodes");
        Assert.All(summaries, s => Assert.True(s.TestAccuracy > 0.5, $"{s.Address}: {s.TestAccuracy:P1}"));
    }

    private static readonly TimeSpan InProcessPeriod = TimeSpan.FromMilliseconds(30);

    /// <summary>Runs <paramref name="count"/> gossip nodes on digits in this process, on loopback, checkpointing into <paramref name="dir"/>.</summary>
    private static async Task<NodeSummary[]> InProcessSwarm(TempDir dir, GossipOptions gossip, int count, int cycles)
    {
        var digits = BuiltinData.Load("digits");
        var train = digits.Train;
        var learner = LocalLearner.For(train, [16], 0);
        var secret = TestKeys.Secret();
        var addresses = Enumerable.Range(0, count).Select(_ => $"127.0.0.1:{FreePort()}").ToArray();
        var shards = Partition.Parse("iid").Split(train, count, new Rng(1));
        NodeOptions Options(int i) => new(addresses[i], addresses.Where((_, j) => j != i).ToList(), gossip, InProcessPeriod,
            cycles, dir.File($"n{i}.st"), MaxMessageBytes: 1 << 20, Linger: TimeSpan.FromMilliseconds(300));
        var nodes = new List<SwarmNode>();
        try
        {
            for (int i = 0; i < count; i++) nodes.Add(await SwarmNode.StartAsync(Options(i), learner, train, shards[i], new MessageAuth(secret, addresses[i]), _ => { }));
            return await Task.WhenAll(nodes.Select(n => n.RunAsync(digits.Test)));
        }
        finally
        {
            foreach (var n in nodes) await n.DisposeAsync();
        }
    }

    private sealed class NodeProcess(Process process)
    {
        public Process Process { get; } = process;
        public System.Text.StringBuilder Log { get; } = new();
        public string Output = "";

        /// <summary>The process's JSON summary; a process that printed none fails the test with its exit code and log.</summary>
        public System.Text.Json.JsonElement Summary()
        {
            Assert.True(Output.Length > 0, $"exit code {(Process.HasExited ? Process.ExitCode : "none yet")}, no summary printed; its log:\n{Log}");
            return System.Text.Json.JsonDocument.Parse(Output).RootElement;
        }
    }

    private static NodeProcess Start(string address, string peers, int shard, int count, string key, string checkpoint, int cycles) =>
        Run("node", "--listen", address, "--peers", peers, "--shard", $"{shard}/{count}", "--key-file", key,
            "--checkpoint", checkpoint, "--period", "0.25", "--cycles", cycles.ToString(System.Globalization.CultureInfo.InvariantCulture), "--linger", "3", "--json");

    private static async Task<HttpStatusCode> PostSigned(HttpClient http, string address, string path, byte[] body, MessageAuth signer)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://{address}{path}") { Content = new ByteArrayContent(body) };
        request.Headers.ExpectContinue = true; // an oversized body is refused before it is sent
        request.Headers.TryAddWithoutValidation(MessageAuth.Header, signer.Sign("POST", path, address, body));
        using var response = await http.SendAsync(request);
        return response.StatusCode;
    }

    /// <summary>A key file every process of a test swarm signs with.</summary>
    private static string SharedKey(TempDir dir)
    {
        string key = dir.File("key");
        TestKeys.WriteSecret(key);
        return key;
    }

    private static double CheckpointAge(string path) =>
        double.Parse(Safetensors.Read(path).Metadata["coldmind.swarm.age"], System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Eight_nodes_converge_two_restart_from_their_checkpoints_and_bad_messages_are_rejected_and_logged()
    {
        using var dir = new TempDir();
        string key = SharedKey(dir);
        const int count = 8, cycles = 50;
        var addresses = Enumerable.Range(0, count).Select(_ => $"127.0.0.1:{FreePort()}").ToArray();
        // each node starts knowing only its two ring neighbours; peer sampling finds the rest
        string Peers(int i) => $"{addresses[(i + 1) % count]},{addresses[(i + count - 1) % count]}";
        var nodes = Enumerable.Range(0, count).Select(i => Start(addresses[i], Peers(i), i, count, key, dir.File($"n{i}.st"), cycles)).ToArray();
        try
        {
            // hostile traffic to node 0 while the swarm runs
            // eight processes starting on a loaded machine may take longer than the 5 s this waited: wait until node 0 listens
            for (var until = DateTime.UtcNow.AddMinutes(1); DateTime.UtcNow < until; await Task.Delay(200))
                try { using var probe = new TcpClient(); await probe.ConnectAsync(IPEndPoint.Parse(addresses[0])); break; }
                catch (SocketException) { }
            await Task.Delay(TimeSpan.FromSeconds(3));
            using var http = new HttpClient();
            var learner = LocalLearner.For(BuiltinData.Load("digits").Train, [32], 0);
            var good = new GossipNode("127.0.0.1:1", learner.Initial(), 1, 4).Message(learner, ExchangeCodec.Float32, 0);
            var wrongKey = new MessageAuth(TestKeys.Secret(), "127.0.0.1:1");
            var auth = MessageAuth.FromKeyFile(key, "127.0.0.1:1");
            Task<HttpStatusCode> Post(byte[] body, MessageAuth signer) => PostSigned(http, addresses[0], SwarmNode.GossipPath, body, signer);
            Assert.Equal(HttpStatusCode.Unauthorized, await Post(good, wrongKey));
            Assert.Equal(HttpStatusCode.BadRequest, await Post(good[..^7], auth));
            Assert.Equal(HttpStatusCode.BadRequest, await Post(SwarmMessageTests.WithNaN(good), auth));
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, await Post(new byte[200_000], auth));

            // kill two nodes mid-run, then restart them from their checkpoints
            var killed = new[] { 2, 5 };
            // on a loaded machine a node may start seconds after node 0: kill each only once it has learnt something
            for (var until = DateTime.UtcNow.AddMinutes(1); DateTime.UtcNow < until; await Task.Delay(200))
                if (killed.All(i => File.Exists(dir.File($"n{i}.st")) && CheckpointAge(dir.File($"n{i}.st")) > 0)) break;
            foreach (int i in killed) nodes[i].Process.Kill();
            foreach (int i in killed) await nodes[i].Process.WaitForExitAsync();
            var agesAtKill = killed.ToDictionary(i => i, i => CheckpointAge(dir.File($"n{i}.st")));
            await Task.Delay(TimeSpan.FromSeconds(1));
            foreach (int i in killed) nodes[i] = Start(addresses[i], Peers(i), i, count, key, dir.File($"n{i}.st"), cycles);

            foreach (var n in nodes) await n.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
            await Task.Delay(200);
            var summaries = nodes.Select(n => n.Summary()).ToArray();
            foreach (int i in killed)
            {
                Assert.True(summaries[i].GetProperty("resumed").GetBoolean());
                Assert.Contains("resumed from", nodes[i].Log.ToString());
                Assert.True(agesAtKill[i] > 0, "the node had learnt before it was killed");
                Assert.True(summaries[i].GetProperty("age").GetDouble() >= agesAtKill[i], "nothing learnt before the kill was lost");
                Assert.Equal(cycles, summaries[i].GetProperty("cycles").GetInt32());
            }
            var accuracies = summaries.Select(s => s.GetProperty("test_accuracy").GetDouble()).ToArray();
            Assert.True(accuracies.Average() > 0.88, $"mean accuracy {accuracies.Average():P2}: {string.Join(", ", accuracies.Select(a => a.ToString("P1")))}");
            Assert.True(accuracies.Min() > 0.8, $"worst node {accuracies.Min():P2}");
            Assert.True(summaries.All(s => s.GetProperty("received").GetInt64() > 0), "every node received models");

            string log0 = nodes[0].Log.ToString();
            Assert.Equal(4, summaries[0].GetProperty("rejected").GetInt64());
            Assert.Contains("bad signature", log0);
            Assert.Contains("finite", log0);
            Assert.Contains("ends early", log0);
            Assert.Contains("over", log0);
        }
        finally
        {
            foreach (var n in nodes) if (!n.Process.HasExited) n.Process.Kill();
        }
    }

    private static NodeProcess Run(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "Coldmind.Cli.dll"), .. args]) { RedirectStandardOutput = true, RedirectStandardError = true };
        var node = new NodeProcess(Process.Start(psi)!);
        node.Process.ErrorDataReceived += (_, e) => { if (e.Data != null) lock (node.Log) node.Log.AppendLine(e.Data); };
        node.Process.OutputDataReceived += (_, e) => { if (e.Data != null) node.Output += e.Data; };
        node.Process.BeginErrorReadLine();
        node.Process.BeginOutputReadLine();
        return node;
    }

    [Fact]
    public async Task FedAvg_over_http_converges_the_coordinator_resumes_after_a_kill_and_bad_updates_are_rejected_and_logged()
    {
        using var dir = new TempDir();
        string key = SharedKey(dir);
        const int count = 6, rounds = 30;
        string address = $"127.0.0.1:{FreePort()}";
        NodeProcess Coordinator() => Run("coordinator", "--listen", address, "--key-file", key, "--checkpoint", dir.File("coordinator.st"),
            "--rounds", rounds.ToString(System.Globalization.CultureInfo.InvariantCulture), "--clients", "3", "--round-timeout", "3", "--linger", "3", "--json");
        NodeProcess Client(int i) => Run("node", "--protocol", "fedavg", "--coordinator", address, "--shard", $"{i}/{count}", "--key-file", key,
            "--checkpoint", dir.File($"c{i}.st"), "--period", "0.1", "--json");
        long Round() => File.Exists(dir.File("coordinator.st"))
            ? long.Parse(Safetensors.Read(dir.File("coordinator.st")).Metadata["coldmind.fedavg.round"], System.Globalization.CultureInfo.InvariantCulture) : 0;
        var coordinator = Coordinator();
        var clients = Enumerable.Range(0, count).Select(Client).ToArray();
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
            while (Round() < 5 && DateTime.UtcNow < deadline) await Task.Delay(100);
            Assert.True(Round() >= 5, "five rounds done\n" + coordinator.Log);

            // hostile traffic to the coordinator while it runs
            using var http = new HttpClient();
            var learner = LocalLearner.For(BuiltinData.Load("digits").Train, [32], 0);
            var data = BuiltinData.Load("digits").Train;
            byte[] Update(long round) => FedAvgCoordinator.ClientUpdate(learner.Initial(), round, "intruder", learner, data, [0, 1, 2], new LocalTraining(), 0, ExchangeCodec.Float32, null, new Rng(1));
            var wrongKey = new MessageAuth(TestKeys.Secret(), "intruder");
            var auth = MessageAuth.FromKeyFile(key, "intruder");
            Task<HttpStatusCode> Post(byte[] body, MessageAuth signer) => PostSigned(http, address, FedAvgServer.UpdatePath, body, signer);
            var good = Update(Round());
            Assert.Equal(HttpStatusCode.Unauthorized, await Post(good, wrongKey));
            Assert.Equal(HttpStatusCode.BadRequest, await Post(good[..^7], auth));
            Assert.Equal(HttpStatusCode.BadRequest, await Post(SwarmMessageTests.WithNaN(good), auth));
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, await Post(new byte[200_000], auth));
            Assert.Equal(HttpStatusCode.Conflict, await Post(Update(rounds + 5), auth)); // not the open round, and "intruder" never joined one

            // kill the coordinator and one client mid-run, then restart both from their checkpoints
            var first = coordinator;
            coordinator.Process.Kill();
            clients[1].Process.Kill();
            await coordinator.Process.WaitForExitAsync();
            await clients[1].Process.WaitForExitAsync();
            long atKill = Round();
            await Task.Delay(TimeSpan.FromSeconds(1));
            coordinator = Coordinator();
            clients[1] = Client(1);

            await coordinator.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(3));
            foreach (var c in clients) await c.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
            await Task.Delay(200);
            Assert.True(coordinator.Process.ExitCode == 0, coordinator.Log.ToString());
            var summary = coordinator.Summary();
            Assert.True(summary.GetProperty("resumed").GetBoolean());
            Assert.Contains($"resumed from {dir.File("coordinator.st")}: round {atKill}", coordinator.Log.ToString());
            Assert.Equal(rounds, summary.GetProperty("rounds").GetInt64());
            float global = summary.GetProperty("test_accuracy").GetSingle();
            Assert.True(global > 0.85, $"the global model reached {global:P2}");
            foreach (var c in clients)
            {
                Assert.True(c.Process.ExitCode == 0, c.Log.ToString());
                var s = c.Summary();
                Assert.Equal(global, s.GetProperty("test_accuracy").GetSingle()); // every client ends with the final global model
                Assert.True(s.GetProperty("rounds_trained").GetInt32() > 0);
            }
            Assert.True(clients[1].Summary().GetProperty("resumed").GetBoolean());
            string log = first.Log.ToString();
            foreach (var reason in new[] { "bad signature", "ends early", "finite", "over", $"an update for round {rounds + 5}" }) Assert.Contains(reason, log);
        }
        finally
        {
            foreach (var n in clients.Append(coordinator)) if (!n.Process.HasExited) n.Process.Kill();
        }
    }

    [Fact]
    public async Task Nodes_restarted_on_new_classes_keep_the_old_ones_with_replay_and_forget_them_without()
    {
        using var dir = new TempDir();
        string key = SharedKey(dir);
        const int count = 3;
        // three nodes learn classes 0-4, then are restarted from their checkpoints holding classes 5-9
        Task<(double, double, string)> Sequence(string name, params string[] memory)
        {
            var addresses = Enumerable.Range(0, count).Select(_ => $"127.0.0.1:{FreePort()}").ToArray();
            return TwoTasks(classes => (Enumerable.Range(0, count).Select(i => Run([
                "node", "--listen", addresses[i], "--peers", string.Join(',', addresses.Where((_, j) => j != i)), "--shard", $"{i}/{count}", "--classes", classes,
                "--key-file", key, "--checkpoint", dir.File($"{name}{i}.st"), "--period", "0.2", "--cycles", "50", "--linger", "2", "--json", .. memory])).ToArray(), null));
        }
        AssertReplayKeepsTheOldClasses(await Sequence("plain"), await Sequence("memory", "--replay", "200"), "may forget");
    }

    [Fact]
    public async Task FedAvg_clients_restarted_on_new_classes_keep_the_old_ones_in_the_global_model_with_replay_and_forget_them_without()
    {
        using var dir = new TempDir();
        string key = SharedKey(dir);
        const int count = 3, rounds = 25;
        // a coordinator and three clients learn classes 0-4; the coordinator resumes from its checkpoint for 25 rounds
        // more while the clients restart from theirs holding classes 5-9
        Task<(double, double, string)> Sequence(string name, params string[] memory)
        {
            string address = $"127.0.0.1:{FreePort()}";
            int task = 0;
            return TwoTasks(classes => (Enumerable.Range(0, count).Select(i => Run([
                    "node", "--protocol", "fedavg", "--coordinator", address, "--shard", $"{i}/{count}", "--classes", classes, "--key-file", key,
                    "--checkpoint", dir.File($"{name}{i}.st"), "--period", "0.1", "--json", .. memory])).ToArray(),
                Run("coordinator", "--listen", address, "--key-file", key, "--checkpoint", dir.File($"{name}.st"),
                    "--rounds", (++task * rounds).ToString(System.Globalization.CultureInfo.InvariantCulture), "--clients", "3", "--round-timeout", "3", "--linger", "3")));
        }
        AssertReplayKeepsTheOldClasses(await Sequence("plain"), await Sequence("memory", "--replay", "200"), "may make the global model forget");
    }

    /// <summary>
    /// Runs the devices (and coordinator) <paramref name="start"/> gives for classes 0-4, then for 5-9, each set until
    /// every process exits cleanly; returns the last devices' mean test accuracy on classes 0-4 and 5-9, and the first one's log.
    /// </summary>
    private static async Task<(double First, double Second, string Log)> TwoTasks(Func<string, (NodeProcess[] Devices, NodeProcess? Coordinator)> start)
    {
        var log = new System.Text.StringBuilder();
        NodeProcess[] devices = [];
        foreach (string classes in new[] { "0-4", "5-9" })
        {
            var (started, coordinator) = start(classes);
            devices = started;
            var all = coordinator is null ? devices : [.. devices, coordinator];
            foreach (var n in all) await n.Process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
            foreach (var n in all) Assert.True(n.Process.ExitCode == 0, n.Log.ToString());
            log.Append(devices[0].Log);
        }
        await Task.Delay(200);
        var summaries = devices.Select(n => n.Summary()).ToArray();
        return (summaries.Average(s => s.GetProperty("other_classes_accuracy").GetDouble()), summaries.Average(s => s.GetProperty("held_classes_accuracy").GetDouble()), log.ToString());
    }

    private static void AssertReplayKeepsTheOldClasses((double First, double Second, string Log) plain, (double First, double Second, string Log) remembered, string forgetWarning)
    {
        string all = $"without memory: classes 0-4 {plain.First:P1}, 5-9 {plain.Second:P1}; with replay: {remembered.First:P1}, {remembered.Second:P1}";
        Assert.Contains("new data", plain.Log);
        Assert.Contains(forgetWarning, plain.Log);
        Assert.Contains("memory: generation 2; replaying", remembered.Log);
        Assert.True(plain.Second > 0.85 && remembered.Second > 0.75, all); // both learnt the new classes (replay spends half of each batch on the old)
        Assert.True(plain.First < 0.5, all);                               // and the plain devices forgot the old ones
        Assert.True(remembered.First > plain.First + 0.5, all);
    }

    [Fact]
    public void A_node_refuses_a_bad_shard_a_short_key_and_a_foreign_checkpoint_in_one_line()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir.File("short"), Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16)));
        TestKeys.WriteSecret(dir.File("key"));
        var (exit, _, err) = CliTests.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "8/8", "--key-file", dir.File("key"));
        Assert.Equal(1, exit);
        Assert.Contains("--shard", err);
        (exit, _, err) = CliTests.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("short"));
        Assert.Equal(1, exit);
        Assert.Contains("at least 32", err);
        Safetensors.Write(dir.File("ck.st"), [("weights", Coldmind.Tensors.Tensor.Zeros(3))], new Dictionary<string, string> { ["coldmind.swarm.model_id"] = "1", ["coldmind.swarm.age"] = "0", ["coldmind.swarm.cycle"] = "0", ["coldmind.swarm.data"] = "0", ["coldmind.swarm.view"] = "[]" });
        (exit, _, err) = CliTests.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--checkpoint", dir.File("ck.st"));
        Assert.Equal(1, exit);
        Assert.Contains("another model", err);
        Assert.Single(err.Trim().Split('\n'));
        var learner = LocalLearner.For(BuiltinData.Load("digits").Train, [32], 0); // the node's defaults
        SwarmCheckpoint.Write(dir.File("bad-age.st"), "swarm", learner, [("weights", learner.Initial()), ("answer", learner.Initial())],
            new Dictionary<string, string> { ["age"] = "-3", ["answer_weight"] = "0", ["cycle"] = "0", ["data"] = "0", ["view"] = "[]" });
        (exit, _, err) = CliTests.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--checkpoint", dir.File("bad-age.st"));
        Assert.Equal(1, exit);
        Assert.Contains("bad age", err);
        SwarmCheckpoint.Write(dir.File("bad-quiet.st"), "swarm", learner, [("weights", learner.Initial()), ("answer", learner.Initial())],
            new Dictionary<string, string> { ["age"] = "0", ["answer_weight"] = "0", ["cycle"] = "0", ["data"] = "0", ["view"] = "[]", ["quiet"] = "-1" });
        (exit, _, err) = CliTests.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--checkpoint", dir.File("bad-quiet.st"), "--walk", "3");
        Assert.Equal(1, exit);
        Assert.Contains("bad quiet", err);
        (exit, _, err) = CliTests.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--walk", "3", "--tokens", "5");
        Assert.Equal(1, exit);
        Assert.Contains("--walk and --tokens", err);
        (exit, _, err) = CliTests.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--pace", "1");
        Assert.Equal(1, exit);
        Assert.Contains("--pace paces walks", err);
        (exit, _, err) = CliTests.Run("coordinator", "--listen", "127.0.0.1:0", "--key-file", dir.File("key"), "--checkpoint", dir.File("ck.st"));
        Assert.Equal(1, exit);
        Assert.Contains("not a coordinator checkpoint", err);
        (exit, _, err) = CliTests.Run("node", "--protocol", "fedavg", "--shard", "0/8", "--key-file", dir.File("key"));
        Assert.Equal(1, exit);
        Assert.Contains("--coordinator", err);
        (exit, _, err) = CliTests.Run("node", "--shard", "0/8", "--key-file", dir.File("key"));
        Assert.Equal(1, exit);
        Assert.Contains("--listen", err);
        var memory = new DeviceMemory(new MemoryOptions(Replay: 10), 64);
        memory.Begin(BuiltinData.Load("digits").Train, [0, 1, 2], learner, learner.Initial(), new Coldmind.Tensors.Rng(0));
        var (key, generation) = memory.Persist(dir.File("memory.st"), learner);
        SwarmCheckpoint.Write(dir.File("memory.st"), "swarm", learner, [("weights", learner.Initial()), ("answer", learner.Initial())],
            new Dictionary<string, string> { [key] = generation, ["age"] = "0", ["answer_weight"] = "0", ["cycle"] = "0", ["data"] = "0", ["view"] = "[]" });
        (exit, _, err) = CliTests.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--checkpoint", dir.File("memory.st"));
        Assert.Equal(1, exit);
        Assert.Contains("holds a memory of earlier data", err);
        SwarmCheckpoint.Write(dir.File("client.st"), "fedavg_client", learner, [("global", learner.Initial())], // refused before its memory's file is looked for
            new Dictionary<string, string> { [key] = generation, ["round"] = "3", ["data"] = "0" });
        (exit, _, err) = CliTests.Run("node", "--protocol", "fedavg", "--coordinator", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--checkpoint", dir.File("client.st"));
        Assert.Equal(1, exit);
        Assert.Contains("holds a memory of earlier data", err);
        (exit, _, err) = CliTests.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--classes", "3-12");
        Assert.Equal(1, exit);
        Assert.Contains("--classes takes classes in 0..9", err);
        (exit, _, err) = CliTests.Run("node", "--listen", "127.0.0.1:0", "--peers", "127.0.0.1:1", "--shard", "0/8", "--key-file", dir.File("key"), "--ewc", "-1");
        Assert.Equal(1, exit);
        Assert.Contains("--ewc", err);
    }
}
