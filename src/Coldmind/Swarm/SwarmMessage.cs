using System.Buffers.Binary;
using System.Text;

namespace Coldmind.Swarm;

/// <summary>A peer address (HOST:PORT on a network, a node name in the simulator) and when it was last known alive.</summary>
public readonly record struct PeerDescriptor(string Address, long Timestamp);

/// <summary>
/// One swarm message, the same bytes in the simulator and on the wire.
/// <code>
/// "CMSW" version:u8 kind:u8 codec:u8 0:u8  model-id:u64  sender:(u8 n, n bytes UTF-8)  age:f64  round:i64
/// length:u32  view:(u8 count, count × (u8 n, n bytes address, i64 timestamp))  values (<see cref="ExchangeCodec"/>)
/// </code>
/// Gossip and global messages carry a model as its difference from the shared initial weights; an update carries a
/// client's difference from the round's global model; a view message (walks, <see cref="GossipOptions.Walk"/>) only
/// the sender's view, with length 0 and no values. Everything is little-endian; a message is exactly its fields.
/// </summary>
public sealed record SwarmMessage(SwarmMessage.Type Kind, ulong ModelId, string Sender, double Age, long Round,
    int Length, IReadOnlyList<PeerDescriptor> View, ExchangeCodec Codec, float[] Values, int[]? Indices)
{
    public enum Type : byte { Gossip = 1, Global = 2, Update = 3, View = 4 }

    public const int MaxView = 64, MaxAddressBytes = 255;
    /// <summary>The largest age a message may claim: 10¹⁵ examples, beyond any swarm's, and far from overflow in a merge's sums.</summary>
    public const double MaxAge = 1e15;
    private static ReadOnlySpan<byte> Magic => "CMSW"u8;
    private const byte Version = 1;

    /// <summary>
    /// Encodes <paramref name="vector"/> with <paramref name="codec"/> (top-k: the values where <paramref name="rank"/>
    /// is largest in magnitude, when given). A model with non-finite values is refused here, as a receiver would refuse it.
    /// </summary>
    public static byte[] Encode(Type kind, ulong modelId, string sender, double age, long round,
        IReadOnlyList<PeerDescriptor> view, ExchangeCodec codec, ReadOnlySpan<float> vector, ReadOnlySpan<float> rank = default)
    {
        if (view.Count > MaxView) throw new ArgumentException($"A view of {view.Count} peers; at most {MaxView}.");
        if (!(age >= 0 && age <= MaxAge) || !vector.IsEmpty && !TensorPrimitives.IsFiniteAll(vector)) // IsFiniteAll is false on no values
            throw new SwarmMessageException("the model has diverged (non-finite values or age); it is not sent");
        var o = new List<byte>(vector.Length * 4 + 64);
        o.AddRange(Magic);
        o.AddRange([Version, (byte)kind, (byte)codec.Type, 0]);
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, modelId); o.AddRange(b);
        AddString(o, sender);
        BinaryPrimitives.WriteDoubleLittleEndian(b, age); o.AddRange(b);
        BinaryPrimitives.WriteInt64LittleEndian(b, round); o.AddRange(b);
        BinaryPrimitives.WriteInt32LittleEndian(b, vector.Length); o.AddRange(b[..4]);
        o.Add((byte)view.Count);
        foreach (var p in view)
        {
            AddString(o, p.Address);
            BinaryPrimitives.WriteInt64LittleEndian(b, p.Timestamp); o.AddRange(b);
        }
        codec.Encode(vector, o, rank);
        return o.ToArray();
    }

    /// <summary>
    /// Parses and validates a message from an untrusted peer: its model must be <paramref name="modelId"/> with
    /// <paramref name="length"/> parameters, every value finite, every field within bounds.
    /// </summary>
    public static SwarmMessage Decode(ReadOnlySpan<byte> data, ulong modelId, int length)
    {
        if (data.Length < 4 || !data[..4].SequenceEqual(Magic)) throw new SwarmMessageException("not a swarm message (no CMSW magic)");
        int at = 4;
        var head = Take(data, ref at, 4);
        if (head[0] != Version) throw new SwarmMessageException($"message version {head[0]}; this node speaks {Version}");
        if (head[1] is < 1 or > 4) throw new SwarmMessageException($"unknown message kind {head[1]}");
        if (!Enum.IsDefined((ExchangeCodec.Kind)head[2])) throw new SwarmMessageException($"unknown codec {head[2]}");
        var kind = (Type)head[1];
        var codec = new ExchangeCodec((ExchangeCodec.Kind)head[2]);
        ulong id = BinaryPrimitives.ReadUInt64LittleEndian(Take(data, ref at, 8));
        if (id != modelId) throw new SwarmMessageException($"model {id:x16} is not this swarm's model {modelId:x16} (another architecture or seed)");
        string sender = TakeString(data, ref at);
        double age = BinaryPrimitives.ReadDoubleLittleEndian(Take(data, ref at, 8));
        if (!(age >= 0 && age <= MaxAge)) throw new SwarmMessageException($"age {age}; an age is a count of examples, 0 to {MaxAge:G}");
        long round = BinaryPrimitives.ReadInt64LittleEndian(Take(data, ref at, 8));
        if (round < 0) throw new SwarmMessageException($"round {round}; rounds count from 0");
        int n = BinaryPrimitives.ReadInt32LittleEndian(Take(data, ref at, 4));
        if (kind == Type.View ? n != 0 : n != length)
            throw new SwarmMessageException(kind == Type.View ? $"a view message with {n} values" : $"a model of {n} parameters; this swarm's has {length}");
        int count = Take(data, ref at, 1)[0];
        if (count > MaxView) throw new SwarmMessageException($"a view of {count} peers; at most {MaxView}");
        var view = new PeerDescriptor[count];
        for (int i = 0; i < count; i++)
            view[i] = new PeerDescriptor(TakeString(data, ref at), BinaryPrimitives.ReadInt64LittleEndian(Take(data, ref at, 8)));
        int read = codec.Decode(data[at..], n, out var values, out var indices);
        if (at + read != data.Length) throw new SwarmMessageException($"{data.Length - at - read} bytes after the model");
        return new SwarmMessage(kind, id, sender, age, round, length, view, codec, values, indices);
    }

    /// <summary>The decoded vector with unsent values 0.</summary>
    public float[] DenseValues()
    {
        if (Indices == null) return Values;
        var dense = new float[Length];
        for (int i = 0; i < Indices.Length; i++) dense[Indices[i]] = Values[i];
        return dense;
    }

    private static void AddString(List<byte> o, string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        if (bytes.Length > MaxAddressBytes) throw new ArgumentException($"'{s}' is longer than {MaxAddressBytes} bytes.");
        o.Add((byte)bytes.Length);
        o.AddRange(bytes);
    }

    private static ReadOnlySpan<byte> Take(ReadOnlySpan<byte> data, ref int at, int n)
    {
        if (data.Length - at < n) throw new SwarmMessageException($"the message ends early at byte {data.Length}");
        var s = data.Slice(at, n);
        at += n;
        return s;
    }

    private static string TakeString(ReadOnlySpan<byte> data, ref int at)
    {
        int n = Take(data, ref at, 1)[0];
        try { return new UTF8Encoding(false, true).GetString(Take(data, ref at, n)); }
        catch (DecoderFallbackException) { throw new SwarmMessageException("an address is not valid UTF-8"); }
    }
}
