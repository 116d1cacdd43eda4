using System.Numerics.Tensors;
using Xunit;
using Coldmind.Data;
using Coldmind.Swarm;
using Coldmind.Tensors;

namespace Coldmind.Tests;

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
