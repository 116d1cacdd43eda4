using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Coldmind.Tensors;

namespace Coldmind.Formats;

/// <summary>
/// The Hugging Face safetensors format: an 8-byte little-endian header length, a JSON header mapping each
/// tensor name to {dtype, shape, data_offsets} (plus an optional "__metadata__" of string pairs), then
/// the raw little-endian data. We write F32; we read F32, F16 and BF16 (converted to float32).
/// </summary>
public static class Safetensors
{
    private const long MaxHeaderBytes = 100_000_000; // the limit the reference implementation enforces

    /// <summary>Tensors as float32, each tensor's stored dtype (F32, F16, BF16), and the __metadata__ pairs.</summary>
    public sealed record File(IReadOnlyDictionary<string, Tensor> Tensors, IReadOnlyDictionary<string, string> DTypes, IReadOnlyDictionary<string, string> Metadata);

    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, IReadOnlyDictionary<string, string>? metadata = null)
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
        foreach (var (name, t) in list)
        {
            if (header.ContainsKey(name)) throw new ColdmindException($"Two tensors are named '{name}'.");
            long bytes = (long)t.Numel * 4;
            header[name] = new JsonObject
            {
                ["dtype"] = "F32",
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
            foreach (var (_, t) in list)
            {
                var values = t.ToArray();
                if (!BitConverter.IsLittleEndian)
                    for (int i = 0; i < values.Length; i++) values[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReverseEndianness(BitConverter.SingleToInt32Bits(values[i])));
                s.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));
            }
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
        JsonObject header;
        try
        {
            header = JsonNode.Parse(bytes.AsSpan(8, (int)headerLen))?.AsObject() ?? throw new JsonException("empty header");
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException)
        {
            throw new ColdmindException($"'{path}' has a corrupt safetensors header: {e.Message}", e);
        }
        long dataStart = 8 + (long)headerLen, dataLen = bytes.Length - dataStart;
        var tensors = new Dictionary<string, Tensor>();
        var dtypes = new Dictionary<string, string>();
        var metadata = new Dictionary<string, string>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                if (node is JsonObject meta)
                    foreach (var (k, v) in meta) metadata[k] = v?.GetValue<string>() ?? "";
                continue;
            }
            try
            {
                var info = node!.AsObject();
                string dtype = info["dtype"]!.GetValue<string>();
                var shape = info["shape"]!.AsArray().Select(d => d!.GetValue<int>()).ToArray();
                var off = info["data_offsets"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                int elem = dtype switch { "F32" => 4, "F16" or "BF16" => 2, _ => throw new ColdmindException($"'{path}': tensor '{name}' has dtype {dtype}; F32, F16 and BF16 are supported.") };
                long n = Tensors.Shape.Numel(shape);
                if (off.Length != 2 || off[0] < 0 || off[1] > dataLen || off[1] - off[0] != n * elem)
                    throw new ColdmindException($"'{path}': tensor '{name}' claims bytes [{string.Join(", ", off)}] for {n} {dtype} values, which does not fit the {dataLen}-byte data section.");
                tensors[name] = Tensor.FromArray(Decode(bytes.AsSpan((int)(dataStart + off[0]), (int)(n * elem)), dtype), shape);
                dtypes[name] = dtype;
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException or JsonException)
            {
                throw new ColdmindException($"'{path}': the header entry for tensor '{name}' is malformed.", e);
            }
        }
        return new File(tensors, dtypes, metadata);
    }

    private static float[] Decode(ReadOnlySpan<byte> raw, string dtype)
    {
        int n = raw.Length / (dtype == "F32" ? 4 : 2);
        var result = new float[n];
        for (int i = 0; i < n; i++)
        {
            result[i] = dtype switch
            {
                "F32" => BinaryPrimitives.ReadSingleLittleEndian(raw[(4 * i)..]),
                "F16" => (float)BinaryPrimitives.ReadHalfLittleEndian(raw[(2 * i)..]),
                _ => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]) << 16),
            };
        }
        return result;
    }
}
