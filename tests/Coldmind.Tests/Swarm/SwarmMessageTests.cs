using Xunit;
using Coldmind.Swarm;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class SwarmMessageTests
{
    private static readonly LocalLearner Learner = new(64, [8], 10, 3);

    private static byte[] Message(ExchangeCodec codec, float[]? values = null)
    {
        var node = new GossipNode("127.0.0.1:9000", values ?? Learner.Initial(), 12, 4);
        node.View.Merge([new PeerDescriptor("127.0.0.1:9001", 5), new PeerDescriptor("127.0.0.1:9002", 6)]);
        return node.Message(Learner, codec, 1000);
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
        Assert.Contains("finite", Assert.Throws<SwarmMessageException>(() => SwarmMessage.Decode(BadMessages.WithNaN(bytes), Learner.ModelId, Learner.ParameterCount)).Message);
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
