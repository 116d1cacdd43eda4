using System.Buffers.Binary;
using System.IO.Compression;

namespace Coldmind.Cognition;

/// <summary>
/// The bytes an edge device sends when it escalates, and the bytes it gets back. A request is the input itself at
/// a chosen bit depth: 1, 2, 4 or 8 bits a feature (values in [0, 1], as images and sensor readings are scaled,
/// rounded to 2^bits − 1 levels), or 16 / 32-bit floats; raw-deflated when that is smaller. A reply is the cloud's
/// top-k classes with their probabilities in half precision: the edge needs the answer and how sure it is, not
/// every logit.
/// <code>
/// request: [u8 bits | 0x80 if deflated] [u8 k] [u16 features] [data]
/// reply:   [u8 k] k × ([u16 class] [f16 probability])
/// </code>
/// Requests come from untrusted peers: every length is checked against what the model takes before anything is
/// allocated from it, inflation stops at the expected size, and floats must be finite.
/// </summary>
public static class Payload
{
    public static readonly int[] BitDepths = [1, 2, 4, 8, 16, 32];
    public const int HeaderBytes = 4;
    private const byte Deflated = 0x80;

    /// <summary>Bytes of the packed data (before deflate) for <paramref name="features"/> at <paramref name="bits"/>.</summary>
    public static int DataBytes(int features, int bits) => (features * bits + 7) / 8;

    public static byte[] Encode(ReadOnlySpan<float> x, int bits, int topK)
    {
        if (!BitDepths.Contains(bits)) throw new ColdmindException($"A payload holds 1, 2, 4, 8, 16 or 32 bits a feature, not {bits}.");
        if (x.Length is 0 or > ushort.MaxValue) throw new ColdmindException($"A payload holds 1 to {ushort.MaxValue} features, not {x.Length}.");
        if (topK is < 1 or > byte.MaxValue) throw new ColdmindException($"top-k must be in 1..255, got {topK}.");
        var data = new byte[DataBytes(x.Length, bits)];
        if (bits == 32) for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4 * i), x[i]);
        else if (bits == 16) for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(data.AsSpan(2 * i), (Half)x[i]);
        else
        {
            int levels = (1 << bits) - 1;
            for (int i = 0; i < x.Length; i++)
            {
                int code = (int)MathF.Round(Math.Clamp(x[i], 0f, 1f) * levels);
                data[i * bits / 8] |= (byte)(code << (i * bits % 8));
            }
        }
        var packed = DeflateBytes(data);
        bool deflate = packed.Length < data.Length;
        var body = deflate ? packed : data;
        var message = new byte[HeaderBytes + body.Length];
        message[0] = (byte)(bits | (deflate ? Deflated : 0));
        message[1] = (byte)topK;
        BinaryPrimitives.WriteUInt16LittleEndian(message.AsSpan(2), (ushort)x.Length);
        body.CopyTo(message, HeaderBytes);
        return message;
    }

    /// <summary>The features of a request for a model of <paramref name="features"/> inputs, and the k it asks for.</summary>
    public static (float[] X, int TopK) Decode(ReadOnlySpan<byte> message, int features)
    {
        if (message.Length < HeaderBytes) throw new PayloadException($"The request has {message.Length} bytes, fewer than its {HeaderBytes}-byte header.");
        int bits = message[0] & ~Deflated, topK = message[1], count = BinaryPrimitives.ReadUInt16LittleEndian(message[2..]);
        if (!BitDepths.Contains(bits)) throw new PayloadException($"The request says {bits} bits a feature; 1, 2, 4, 8, 16 and 32 are known.");
        if (topK == 0) throw new PayloadException("The request asks for the top 0 classes.");
        if (count != features) throw new PayloadException($"The request holds {count} features; the model takes {features}.");
        int expected = DataBytes(count, bits);
        var body = message[HeaderBytes..];
        byte[] data = (message[0] & Deflated) != 0 ? Inflate(body, expected) : body.ToArray();
        if (data.Length != expected) throw new PayloadException($"The request's data is {data.Length} bytes; {count} features at {bits} bits take {expected}.");
        var x = new float[count];
        if (bits == 32) for (int i = 0; i < count; i++) x[i] = BinaryPrimitives.ReadSingleLittleEndian(data.AsSpan(4 * i));
        else if (bits == 16) for (int i = 0; i < count; i++) x[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(data.AsSpan(2 * i));
        else
        {
            float levels = (1 << bits) - 1;
            for (int i = 0; i < count; i++) x[i] = ((data[i * bits / 8] >> (i * bits % 8)) & ((1 << bits) - 1)) / levels;
        }
        for (int i = 0; i < count; i++)
            if (!float.IsFinite(x[i])) throw new PayloadException($"The request's feature {i} is {x[i]}; only finite values are accepted.");
        return (x, topK);
    }

    /// <summary>The <paramref name="k"/> most probable classes (fewer if there are fewer classes), most probable first.</summary>
    public static byte[] EncodeReply(ReadOnlySpan<float> probabilities, int k)
    {
        k = Math.Min(k, probabilities.Length);
        var order = Enumerable.Range(0, probabilities.Length).ToArray();
        var p = probabilities.ToArray();
        Array.Sort(order, (a, b) => p[b].CompareTo(p[a]));
        var reply = new byte[1 + 4 * k];
        reply[0] = (byte)k;
        for (int i = 0; i < k; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(reply.AsSpan(1 + 4 * i), (ushort)order[i]);
            BinaryPrimitives.WriteHalfLittleEndian(reply.AsSpan(3 + 4 * i), (Half)p[order[i]]);
        }
        return reply;
    }

    public static (int[] Classes, float[] Probabilities) DecodeReply(ReadOnlySpan<byte> reply, int classes)
    {
        if (reply.Length < 1 || reply[0] == 0 || reply.Length != 1 + 4 * reply[0])
            throw new PayloadException($"The reply's {reply.Length} bytes do not hold the {(reply.Length > 0 ? reply[0] : 0)} classes it announces.");
        int k = reply[0];
        var ids = new int[k];
        var p = new float[k];
        for (int i = 0; i < k; i++)
        {
            ids[i] = BinaryPrimitives.ReadUInt16LittleEndian(reply[(1 + 4 * i)..]);
            p[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(reply[(3 + 4 * i)..]);
            if (ids[i] >= classes || !(p[i] is >= 0 and <= 1.001f)) throw new PayloadException($"The reply's entry {i} (class {ids[i]}, probability {p[i]}) is out of range.");
        }
        return (ids, p);
    }

    private static byte[] DeflateBytes(byte[] data)
    {
        using var output = new MemoryStream();
        using (var deflate = new DeflateStream(output, CompressionLevel.SmallestSize, leaveOpen: true)) deflate.Write(data);
        return output.ToArray();
    }

    /// <summary>Inflates at most <paramref name="expected"/> + 1 bytes: a deflate bomb stops there.</summary>
    private static byte[] Inflate(ReadOnlySpan<byte> body, int expected)
    {
        try
        {
            using var deflate = new DeflateStream(new MemoryStream(body.ToArray()), CompressionMode.Decompress);
            var buffer = new byte[expected + 1];
            int n = 0, read;
            while (n < buffer.Length && (read = deflate.Read(buffer, n, buffer.Length - n)) > 0) n += read;
            return buffer[..n];
        }
        catch (InvalidDataException e) { throw new PayloadException($"The request's deflated data is corrupt: {e.Message}"); }
    }
}

/// <summary>A request or reply that is malformed: the server answers 400 with the message and stays up.</summary>
public sealed class PayloadException(string message) : ColdmindException(message);
