// A device that joins a gossip-learning swarm from code: it trains a small model on its own shard of the data and
// swaps models with peers over signed HTTP (no server); peers it was not told of are found through the others' views.
//   head -c 32 /dev/urandom | base64 > key
//   dotnet run --project samples/SwarmDevice -- 127.0.0.1:7001 127.0.0.1:7002 key 0/2 &
//   dotnet run --project samples/SwarmDevice -- 127.0.0.1:7002 127.0.0.1:7001 key 1/2
using System.Globalization;
using Coldmind;
using Coldmind.Data;
using Coldmind.Network;
using Coldmind.Swarm;
using Coldmind.Tensors;

if (args.Length is < 4 or > 5 || args[3].Split('/') is not [var i, var n])
{
    Console.Error.WriteLine("usage: SwarmDevice LISTEN PEER[,PEER…] KEYFILE SHARD/SHARDS [CYCLES]");
    Console.Error.WriteLine("   e.g. SwarmDevice 127.0.0.1:7001 127.0.0.1:7002 key 0/2");
    return 2;
}
try
{
    int shard = int.Parse(i, CultureInfo.InvariantCulture), shards = int.Parse(n, CultureInfo.InvariantCulture);
    int cycles = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 30;
    var data = BuiltinData.Load("digits");
    var mine = Partition.Parse("iid").Split(data.Train, shards, new Rng(1))[shard]; // every device draws the same split
    var learner = LocalLearner.For(data.Train, hidden: [32], seed: 1);              // and starts from the same model
    var training = new LocalTraining(Steps: 10, BatchSize: 16, LearningRate: 0.1f); // SGD steps per model received
    var gossip = new GossipOptions(training, ExchangeCodec.Parse("int8"));              // models travel as int8
    var options = new NodeOptions(args[0], args[1].Split(','), gossip, Period: TimeSpan.FromSeconds(0.5),
        Cycles: cycles, CheckpointPath: null, MaxMessageBytes: 1 << 20, Linger: TimeSpan.FromSeconds(2));
    using var auth = MessageAuth.FromKeyFile(args[2], self: args[0]); // the swarm secret (`coldmind key new`); this device signs as its address
    await using var node = await SwarmNode.StartAsync(options, learner, data.Train, mine, auth,
        Console.Error.WriteLine);
    var summary = await node.RunAsync(data.Test);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{summary.Address}: test accuracy {summary.TestAccuracy:P1} after {summary.Cycles} cycles; "
        + $"received {summary.Received}, sent {summary.Sent} ({summary.BytesSent} bytes)"));
    return 0;
}
catch (Exception e) when (e is ColdmindException or FormatException)
{
    Console.Error.WriteLine($"error: {e.Message}");
    return 1;
}
