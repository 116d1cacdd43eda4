using System.Buffers.Binary;
using System.Text.Json.Nodes;
using System.Text.Json;
using System.Text;

namespace Coldmind.Formats;

/// <summary>
/// The Hugging Face safetensors format: an 8-byte little-endian header length, a JSON header mapping each
/// tensor name to {dtype, shape, data_offsets} (plus an optional "__metadata__" of string pairs), then
/// the raw little-endian data. We write F32, or I8/U8/U16/I32 for integer tensors (indices, codes); we read
/// F32, F16, BF16, I8, U8, U16 and I32 (converted to float32, so integers must stay within ±2²⁴).
/// </summary>
public static class Safetensors
{
    private const long MaxHeaderBytes = 100_000_000; // the limit the reference implementation enforces

    /// <summary>One stored tensor: its shape and its values as float32 (row-major).</summary>
    public sealed record Array(int[] Shape, float[] Values);

    /// <summary>Arrays as float32, each array's stored dtype (F32, F16, BF16, …), and the __metadata__ pairs.</summary>
    public sealed record File(IReadOnlyDictionary<string, Array> Arrays, IReadOnlyDictionary<string, string> DTypes, IReadOnlyDictionary<string, string> Metadata);

    /// <summary>
    /// Writes arrays as F32, or as the dtype <paramref name="dtypes"/> names for them ("F16": the values must be
    /// half-precision numbers; "I8", "U8", "U16" or "I32": whole numbers in range).
    /// </summary>
    public static void Write(string path, IEnumerable<(string Name, Array Array)> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        IReadOnlyDictionary<string, string>? dtypes = null)
    {
        var list = tensors.ToList();
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata) meta[k] = v;
            header["__metadata__"] = meta;
        }
        long offset = 0;
        var encoded = new List<byte[]>();
        foreach (var (name, t) in list)
        {
            if (header.ContainsKey(name)) throw new ColdmindException($"Two tensors are named '{name}'.");
            string dtype = dtypes?.GetValueOrDefault(name) ?? "F32";
            if (Count(t.Shape) != t.Values.Length)
                throw new ColdmindException($"Tensor '{name}': {t.Values.Length} values do not fill shape [{string.Join(", ", t.Shape)}].");
            var data = Encode(name, t.Values, dtype);
            encoded.Add(data);
            long bytes = data.Length;
            header[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (json.Length + 7) / 8 * 8; // the data section starts 8-byte aligned; pad with spaces
        AtomicFile.Write(path, s =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)padded);
            s.Write(len);
            s.Write(json);
            for (int i = json.Length; i < padded; i++) s.WriteByte((byte)' ');
            foreach (var data in encoded) s.Write(data);
        });
    }

    public static File Read(string path)
    {
        if (!System.IO.File.Exists(path)) throw new ColdmindException($"File not found: '{path}'.");
        var bytes = System.IO.File.ReadAllBytes(path);
        if (bytes.Length < 8) throw new ColdmindException($"'{path}' is truncated: {bytes.Length} bytes, not even a safetensors header length.");
        ulong headerLen = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (headerLen > MaxHeaderBytes || 8 + (long)headerLen > bytes.Length)
            throw new ColdmindException($"'{path}' is not a valid safetensors file: header length {headerLen} does not fit its {bytes.Length} bytes.");
        try
        {
            return Parse(path, bytes, (int)headerLen);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException
            or DecoderFallbackException or NullReferenceException or OverflowException or KeyNotFoundException)
        {
            // System.Text.Json reports some problems (invalid UTF-8, wrong value kinds) only while the header is enumerated.
            throw new ColdmindException($"'{path}' has a corrupt safetensors header: {e.Message}", e);
        }
    }

    private static File Parse(string path, byte[] bytes, int headerLen)
    {
        var header = JsonNode.Parse(bytes.AsSpan(8, headerLen))?.AsObject() ?? throw new JsonException("empty header");
        long dataStart = 8 + (long)headerLen, dataLen = bytes.Length - dataStart;
        var tensors = new Dictionary<string, Array>();
        var dtypes = new Dictionary<string, string>();
        var metadata = new Dictionary<string, string>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                foreach (var (k, v) in node!.AsObject()) metadata[k] = v?.GetValue<string>() ?? "";
                continue;
            }
            var info = node!.AsObject();
            string dtype = info["dtype"]!.GetValue<string>();
            var shape = info["shape"]!.AsArray().Select(d => d!.GetValue<int>()).ToArray();
            var off = info["data_offsets"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
            int elem = ElementSize(dtype) ?? throw new ColdmindException($"'{path}': tensor '{name}' has dtype {dtype}; F32, F16, BF16, I8, U8, U16 and I32 are supported.");
            long n = Count(shape);
            if (off.Length != 2 || off[0] < 0 || off[1] > dataLen || off[1] - off[0] != n * elem)
                throw new ColdmindException($"'{path}': tensor '{name}' claims bytes [{string.Join(", ", off)}] for {n} {dtype} values, which does not fit the {dataLen}-byte data section.");
            tensors[name] = new Array(shape, Decode(bytes.AsSpan((int)(dataStart + off[0]), (int)(n * elem)), dtype));
            dtypes[name] = dtype;
        }
        return new File(tensors, dtypes, metadata);
    }

    /// <summary>Elements of a shape; a negative or oversized dimension is a corrupt header, not an allocation.</summary>
    private static long Count(int[] shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ColdmindException($"Negative dimension in shape [{string.Join(", ", shape)}].");
            n *= d;
            if (n > System.Array.MaxLength)
                throw new ColdmindException($"Shape [{string.Join(", ", shape)}] has more elements than one array can hold.");
        }
        return n;
    }

    private static byte[] Encode(string name, float[] values, string dtype)
    {
        switch (dtype)
        {
            case "F32":
                var bytes = new byte[values.Length * 4];
                for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
                return bytes;
            case "F16":
                var halves = new byte[values.Length * 2];
                for (int i = 0; i < values.Length; i++)
                {
                    var h = (Half)values[i];
                    if ((float)h != values[i]) throw new ColdmindException($"Tensor '{name}' cannot be written as F16: value {values[i]} at {i} is not a half-precision number.");
                    BinaryPrimitives.WriteHalfLittleEndian(halves.AsSpan(2 * i), h);
                }
                return halves;
            case "I8" or "U8" or "U16" or "I32":
                var (lo, hi, size) = dtype switch
                {
                    "I8" => (sbyte.MinValue, sbyte.MaxValue, 1),
                    "U8" => (0, byte.MaxValue, 1),
                    "U16" => (0, ushort.MaxValue, 2),
                    _ => (-(1 << 24), 1 << 24, 4), // float32 holds every integer up to 2²⁴ exactly
                };
                var ints = new byte[values.Length * size];
                for (int i = 0; i < values.Length; i++)
                {
                    float v = values[i];
                    if (v != MathF.Round(v) || v < lo || v > hi)
                        throw new ColdmindException($"Tensor '{name}' cannot be written as {dtype}: value {v} at {i} is not a whole number in [{lo}, {hi}].");
                    switch (size)
                    {
                        case 1: ints[i] = (byte)(int)v; break;
                        case 2: BinaryPrimitives.WriteUInt16LittleEndian(ints.AsSpan(2 * i), (ushort)v); break;
                        default: BinaryPrimitives.WriteInt32LittleEndian(ints.AsSpan(4 * i), (int)v); break;
                    }
                }
                return ints;
            default:
                throw new ColdmindException($"Tensor '{name}': safetensors dtype {dtype} cannot be written; use F32, F16, I8, U8, U16 or I32.");
        }
    }

    /// <summary>Bytes of one element of a safetensors dtype, or null for a dtype Coldmind does not read.</summary>
    public static int? ElementSize(string dtype) => dtype switch
    {
        "F32" => 4,
        "F16" or "BF16" or "U16" => 2,
        "I8" or "U8" => 1,
        "I32" => 4,
        _ => null,
    };

    private static float[] Decode(ReadOnlySpan<byte> raw, string dtype)
    {
        int n = raw.Length / ElementSize(dtype)!.Value;
        var result = new float[n];
        for (int i = 0; i < n; i++)
        {
            result[i] = dtype switch
            {
                "F32" => BinaryPrimitives.ReadSingleLittleEndian(raw[(4 * i)..]),
                "F16" => (float)BinaryPrimitives.ReadHalfLittleEndian(raw[(2 * i)..]),
                "I8" => (sbyte)raw[i],
                "U8" => raw[i],
                "U16" => BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]),
                "I32" => BinaryPrimitives.ReadInt32LittleEndian(raw[(4 * i)..]),
                _ => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]) << 16),
            };
        }
        return result;
    }
}
