using System.Buffers.Binary;

namespace Coldmind.Formats;

/// <summary>
/// The IDX format of MNIST and Fashion-MNIST (plain or gzip): magic 0x0000 TT DD (TT = 0x08 unsigned byte,
/// DD = number of dimensions), DD big-endian int32 sizes, then the values row-major.
/// </summary>
public static class Idx
{
    public sealed record Array(int[] Shape, byte[] Values);

    public static Array Read(string path)
    {
        using var s = InputFile.Open(path);
        Span<byte> head = stackalloc byte[4];
        InputFile.ReadExactly(s, head, path, "IDX header");
        if (head[0] != 0 || head[1] != 0)
            throw new ColdmindException($"'{path}' is not an IDX file (magic bytes {head[0]:X2} {head[1]:X2}, expected 00 00).");
        if (head[2] != 0x08)
            throw new ColdmindException($"'{path}' holds IDX type 0x{head[2]:X2}; only unsigned bytes (0x08) are supported.");
        int dims = head[3];
        if (dims is < 1 or > 4) throw new ColdmindException($"'{path}' declares {dims} dimensions; expected 1 to 4.");
        var sizes = new byte[4 * dims];
        InputFile.ReadExactly(s, sizes, path, "IDX dimension sizes");
        var shape = new int[dims];
        long count = 1;
        for (int i = 0; i < dims; i++)
        {
            shape[i] = BinaryPrimitives.ReadInt32BigEndian(sizes.AsSpan(4 * i));
            if (shape[i] < 0) throw new ColdmindException($"'{path}' declares a negative dimension ({shape[i]}).");
            count *= shape[i];
        }
        if (count > 1L << 31) throw new ColdmindException($"'{path}' declares {count} values, more than this reader accepts.");
        var values = new byte[count];
        InputFile.ReadExactly(s, values, path, "IDX data");
        return new Array(shape, values);
    }

    public static void Write(string path, int[] shape, ReadOnlySpan<byte> values)
    {
        var copy = values.ToArray();
        AtomicFile.Write(path, s =>
        {
            s.Write([0, 0, 0x08, (byte)shape.Length]);
            Span<byte> b = stackalloc byte[4];
            foreach (int d in shape) { BinaryPrimitives.WriteInt32BigEndian(b, d); s.Write(b); }
            s.Write(copy);
        });
    }
}
