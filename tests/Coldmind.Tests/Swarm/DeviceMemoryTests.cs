using System.Net;
using Xunit;
using Coldmind.Data;
using Coldmind.Formats;
using Coldmind.Network;
using Coldmind.Swarm;
using Coldmind.Tensors;

namespace Coldmind.Tests;

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
