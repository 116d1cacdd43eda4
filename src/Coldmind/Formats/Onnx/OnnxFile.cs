using System.Buffers.Binary;
using Coldmind.Formats.Onnx.Wire;
using Google.Protobuf;

namespace Coldmind.Formats.Onnx;

/// <summary>
/// Reads and writes .onnx files: Google.Protobuf parses and writes the wire format (messages compiled from
/// onnx.proto beside this file); this class checks what protobuf cannot know — every tensor's size against its
/// dims and type, external data, limits on counts — and maps the messages to <see cref="OnnxModel"/>.
/// A hostile file is refused with one <see cref="ColdmindException"/>, its allocations bounded by its size.
/// </summary>
public static class OnnxFile
{
    /// <summary>Files above this are refused before reading (ONNX itself caps a protobuf file at 2 GiB).</summary>
    public const long MaxBytes = 1L << 30;

    /// <summary>Nesting protobuf follows (graphs inside attributes count), far above any classifier's.</summary>
    private const int RecursionLimit = 32;
    private const int MaxRank = 8;

    public static OnnxModel Read(string path)
    {
        if (!File.Exists(path))
            throw new ColdmindException($"'{path}' does not exist.");
        long length = new FileInfo(path).Length;
        if (length > MaxBytes)
            throw new ColdmindException($"'{path}' is {length:N0} bytes; ONNX files above {MaxBytes:N0} are refused.");
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses the bytes of an .onnx file; <paramref name="path"/> names it in messages.</summary>
    public static OnnxModel Parse(byte[] bytes, string path)
    {
        ModelProto proto;
        try
        {
            var input = CodedInputStream.CreateWithLimits(
                new MemoryStream(bytes, writable: false),
                bytes.Length,
                RecursionLimit
            );
            proto = ModelProto.Parser.ParseFrom(input);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new ColdmindException(
                $"'{path}' is not a readable ONNX file (truncated or corrupt protobuf): {e.Message}",
                e
            );
        }
        if (proto.Graph == null)
            throw new ColdmindException($"'{path}' has no graph: not an ONNX model, or truncated.");
        if (proto.IrVersion is < 3 or > 64)
            throw new ColdmindException($"'{path}' has IR version {proto.IrVersion}; Coldmind reads 3 to 64.");
        var where = $"'{path}'";
        return new OnnxModel(
            proto.IrVersion,
            proto.OpsetImport.Select(o => new OnnxOpset(o.Domain, o.Version)).ToArray(),
            proto.ProducerName,
            FromWire(proto.Graph, where),
            MetadataOf(proto.MetadataProps, where)
        );
    }

    private static Dictionary<string, string> MetadataOf(IEnumerable<StringStringEntryProto> entries, string where)
    {
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var e in entries)
            if (!meta.TryAdd(e.Key, e.Value))
                throw new ColdmindException($"{where}: metadata key '{e.Key}' appears twice.");
        return meta;
    }

    private static OnnxGraph FromWire(GraphProto g, string where) =>
        new(
            g.Name,
            g.Node.Select(n => new OnnxNode(
                    n.Name,
                    n.OpType,
                    n.Domain,
                    n.Input.ToArray(),
                    n.Output.ToArray(),
                    n.Attribute.Select(a => FromWire(a, $"{where}, node '{n.Name}' ({n.OpType})")).ToArray()
                ))
                .ToArray(),
            g.Initializer.Select(t => FromWire(t, where)).ToArray(),
            g.Input.Select(v => FromWire(v, where)).ToArray(),
            g.Output.Select(v => FromWire(v, where)).ToArray()
        );

    private static OnnxAttribute FromWire(AttributeProto a, string where)
    {
        if (a.RefAttrName.Length > 0)
            throw new ColdmindException(
                $"{where}: attribute '{a.Name}' refers to a function's attribute; functions are not read."
            );
        return new OnnxAttribute(
            a.Name,
            (OnnxAttributeType)a.Type,
            a.F,
            a.I,
            a.S.ToStringUtf8(),
            a.T != null ? FromWire(a.T, where) : null,
            a.Floats.ToArray(),
            a.Ints.ToArray()
        );
    }

    private static OnnxValue FromWire(ValueInfoProto v, string where)
    {
        var t = v.Type?.TensorType;
        var dims = t?.Shape?.Dim.Select(d =>
                d.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? d.DimValue : (long?)null
            )
            .ToArray()
            ?? [];
        if (dims.Length > MaxRank || dims.Any(d => d < 0))
            throw new ColdmindException($"{where}: value '{v.Name}' has an invalid shape.");
        return new OnnxValue(v.Name, (OnnxDataType)(t?.ElemType ?? 0), dims);
    }

    /// <summary>A tensor's data in one raw form, after checking its size fits its dims and type.</summary>
    private static OnnxTensor FromWire(TensorProto t, string where)
    {
        string what = $"{where}: tensor '{t.Name}'";
        if (t.DataLocation == 1 || t.ExternalData.Count > 0)
            throw new ColdmindException(
                $"{what} keeps its data in an external file ({t.ExternalData.FirstOrDefault(e => e.Key == "location")?.Value ?? "?"}); "
                    + "Coldmind reads self-contained .onnx files only: re-export without external data (e.g. onnx.save(..., save_as_external_data=False))."
            );
        if (t.Dims.Count > MaxRank || t.Dims.Any(d => d < 0))
            throw new ColdmindException($"{what} has an invalid shape [{string.Join(", ", t.Dims)}].");
        var type = (OnnxDataType)t.DataType;
        if (OnnxTensor.ElementSize(type) < 0)
            throw new ColdmindException($"{what} has data type {type} ({t.DataType}), which Coldmind does not read.");
        // the element count is bounded by the data actually present, so no dims can make us allocate more than the file
        // holds
        long count = 1;
        foreach (long d in t.Dims)
        {
            count *= d;
            if (count > MaxBytes)
                throw new ColdmindException(
                    $"{what} claims {string.Join("×", t.Dims)} elements, more than any ONNX file holds."
                );
        }
        long expected = OnnxTensor.RawBytes(type, count);
        byte[] raw;
        if (!t.RawData.IsEmpty || count == 0)
        {
            if (t.RawData.Length != expected)
                throw new ColdmindException(
                    $"{what} has {t.RawData.Length:N0} bytes of raw data; its shape [{string.Join(", ", t.Dims)}] of {type} needs {expected:N0}."
                );
            raw = t.RawData.ToByteArray();
        }
        else
            raw = TypedToRaw(t, type, count, expected, what);
        return new OnnxTensor(t.Name, t.Dims.ToArray(), type, raw);
    }

    /// <summary>Typed storage (float_data, int32_data, int64_data, double_data) moved into the raw_data
    /// layout.</summary>
    private static byte[] TypedToRaw(TensorProto t, OnnxDataType type, long count, long rawBytes, string what)
    {
        long present = type switch
        {
            OnnxDataType.Float => t.FloatData.Count,
            OnnxDataType.Double => t.DoubleData.Count,
            OnnxDataType.Int64 => t.Int64Data.Count,
            _ => t.Int32Data.Count, // int8/16/32, uint8/16, bool, float16 and bfloat16 bits; int4 two a value
        };
        long needed = type is OnnxDataType.Int4 or OnnxDataType.UInt4 ? (count + 1) / 2 : count;
        if (present != needed)
            throw new ColdmindException(
                $"{what} has {present:N0} values for its {count:N0} elements (shape [{string.Join(", ", t.Dims)}])."
            );
        var raw = new byte[rawBytes];
        var span = raw.AsSpan();
        int size = OnnxTensor.ElementSize(type);
        for (int i = 0; i < needed; i++)
            switch (type)
            {
                case OnnxDataType.Float:
                    BinaryPrimitives.WriteSingleLittleEndian(span[(4 * i)..], t.FloatData[i]);
                    break;
                case OnnxDataType.Double:
                    BinaryPrimitives.WriteDoubleLittleEndian(span[(8 * i)..], t.DoubleData[i]);
                    break;
                case OnnxDataType.Int64:
                    BinaryPrimitives.WriteInt64LittleEndian(span[(8 * i)..], t.Int64Data[i]);
                    break;
                case OnnxDataType.Int32 or OnnxDataType.UInt32:
                    BinaryPrimitives.WriteInt32LittleEndian(span[(4 * i)..], t.Int32Data[i]);
                    break;
                case var _ when size == 2:
                    BinaryPrimitives.WriteUInt16LittleEndian(span[(2 * i)..], (ushort)t.Int32Data[i]);
                    break;
                default:
                    raw[i] = (byte)t.Int32Data[i];
                    break; // 8-bit types, and a 4-bit pair already packed
            }
        return raw;
    }

    /// <summary>Writes <paramref name="model"/> atomically (a temporary file renamed over <paramref
    /// name="path"/>).</summary>
    public static void Write(string path, OnnxModel model)
    {
        var proto = ToWire(model);
        if (proto.CalculateSize() > MaxBytes)
            throw new ColdmindException(
                $"The model is larger than {MaxBytes:N0} bytes; Coldmind writes no external data."
            );
        AtomicFile.Write(path, stream => proto.WriteTo(stream));
    }

    /// <summary>The bytes of <paramref name="model"/> as an .onnx file.</summary>
    public static byte[] ToBytes(OnnxModel model) => ToWire(model).ToByteArray();

    private static ModelProto ToWire(OnnxModel m)
    {
        var proto = new ModelProto
        {
            IrVersion = m.IrVersion,
            ProducerName = m.Producer,
            Graph = ToWire(m.Graph),
        };
        proto.OpsetImport.AddRange(
            m.Opsets.Select(o => new OperatorSetIdProto { Domain = o.Domain, Version = o.Version })
        );
        proto.MetadataProps.AddRange(
            m.Metadata.Select(kv => new StringStringEntryProto { Key = kv.Key, Value = kv.Value })
        );
        return proto;
    }

    private static GraphProto ToWire(OnnxGraph g)
    {
        var proto = new GraphProto { Name = g.Name };
        foreach (var n in g.Nodes)
        {
            var node = new NodeProto
            {
                Name = n.Name,
                OpType = n.OpType,
                Domain = n.Domain,
            };
            node.Input.AddRange(n.Inputs);
            node.Output.AddRange(n.Outputs);
            node.Attribute.AddRange(n.Attributes.Select(ToWire));
            proto.Node.Add(node);
        }
        proto.Initializer.AddRange(g.Initializers.Select(ToWire));
        proto.Input.AddRange(g.Inputs.Select(ToWire));
        proto.Output.AddRange(g.Outputs.Select(ToWire));
        return proto;
    }

    private static AttributeProto ToWire(OnnxAttribute a)
    {
        var proto = new AttributeProto { Name = a.Name, Type = (int)a.Type };
        switch (a.Type)
        {
            case OnnxAttributeType.Float:
                proto.F = a.Float;
                break;
            case OnnxAttributeType.Int:
                proto.I = a.Int;
                break;
            case OnnxAttributeType.String:
                proto.S = ByteString.CopyFromUtf8(a.String);
                break;
            case OnnxAttributeType.Tensor:
                proto.T = ToWire(a.Tensor ?? throw new ColdmindException($"Attribute '{a.Name}' has no tensor."));
                break;
            case OnnxAttributeType.Floats:
                proto.Floats.AddRange(a.Floats);
                break;
            case OnnxAttributeType.Ints:
                proto.Ints.AddRange(a.Ints);
                break;
            default:
                throw new ColdmindException($"Attribute '{a.Name}' of type {a.Type} is not written by Coldmind.");
        }
        return proto;
    }

    private static TensorProto ToWire(OnnxTensor t)
    {
        var proto = new TensorProto
        {
            Name = t.Name,
            DataType = (int)t.DataType,
            RawData = ByteString.CopyFrom(t.Raw),
        };
        proto.Dims.AddRange(t.Dims);
        return proto;
    }

    private static ValueInfoProto ToWire(OnnxValue v)
    {
        var shape = new TensorShapeProto();
        foreach (var d in v.Dims)
            shape.Dim.Add(
                d is { } n
                    ? new TensorShapeProto.Types.Dimension { DimValue = n }
                    : new TensorShapeProto.Types.Dimension { DimParam = "batch" }
            );
        return new ValueInfoProto
        {
            Name = v.Name,
            Type = new TypeProto
            {
                TensorType = new TypeProto.Types.Tensor { ElemType = (int)v.ElementType, Shape = shape },
            },
        };
    }
}
