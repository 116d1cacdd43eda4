using System.Numerics.Tensors;
using Xunit;
using Coldmind.Swarm;
using Coldmind.Tensors;

namespace Coldmind.Tests;

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
