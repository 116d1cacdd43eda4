using System.Buffers.Binary;

namespace Coldmind.Formats.Onnx;

/// <summary>ONNX's tensor element types that Coldmind reads or writes (TensorProto.DataType numbers).</summary>
public enum OnnxDataType
{
    Undefined = 0,
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    UInt16 = 4,
    Int16 = 5,
    Int32 = 6,
    Int64 = 7,
    String = 8,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    UInt32 = 12,
    UInt64 = 13,
    BFloat16 = 16,
    UInt4 = 21,
    Int4 = 22,
}

/// <summary>AttributeProto.AttributeType numbers.</summary>
public enum OnnxAttributeType
{
    Undefined = 0,
    Float = 1,
    Int = 2,
    String = 3,
    Tensor = 4,
    Graph = 5,
    Floats = 6,
    Ints = 7,
    Strings = 8,
    Tensors = 9,
    Graphs = 10,
    SparseTensor = 11,
    SparseTensors = 12,
    TypeProto = 13,
    TypeProtos = 14,
}

/// <summary>An ONNX model: the opsets it is written against, its graph and its metadata_props.</summary>
public sealed record OnnxModel(
    long IrVersion,
    IReadOnlyList<OnnxOpset> Opsets,
    string Producer,
    OnnxGraph Graph,
    IReadOnlyDictionary<string, string> Metadata
)
{
    /// <summary>The default domain's ("" or "ai.onnx") opset version, 0 when the model imports none.</summary>
    public long Opset => Opsets.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();
}

public sealed record OnnxOpset(string Domain, long Version)
{
    /// <summary>The newest opset Coldmind writes and reads (blocked and INT4 DequantizeLinear need 21).</summary>
    public const int Newest = 21;
}

/// <summary>A graph: nodes in file order (ONNX requires topological order), constants, inputs and outputs.</summary>
public sealed record OnnxGraph(
    string Name,
    IReadOnlyList<OnnxNode> Nodes,
    IReadOnlyList<OnnxTensor> Initializers,
    IReadOnlyList<OnnxValue> Inputs,
    IReadOnlyList<OnnxValue> Outputs
);

public sealed record OnnxNode(
    string Name,
    string OpType,
    string Domain,
    IReadOnlyList<string> Inputs,
    IReadOnlyList<string> Outputs,
    IReadOnlyList<OnnxAttribute> Attributes
)
{
    public OnnxAttribute? Attribute(string name) => Attributes.FirstOrDefault(a => a.Name == name);

    public long Int(string name, long fallback) =>
        Attribute(name) is { Type: OnnxAttributeType.Int } a ? a.Int : fallback;

    public float Float(string name, float fallback) =>
        Attribute(name) is { Type: OnnxAttributeType.Float } a ? a.Float : fallback;

    public long[]? Ints(string name) => Attribute(name) is { Type: OnnxAttributeType.Ints } a ? a.Ints : null;

    public string? String(string name) => Attribute(name) is { Type: OnnxAttributeType.String } a ? a.String : null;
}

/// <summary>A node attribute; only the field its <see cref="Type"/> names is meaningful (subgraphs are not
/// kept).</summary>
public sealed record OnnxAttribute(
    string Name,
    OnnxAttributeType Type,
    float Float = 0,
    long Int = 0,
    string String = "",
    OnnxTensor? Tensor = null,
    float[]? FloatList = null,
    long[]? IntList = null
)
{
    public float[] Floats => FloatList ?? [];
    public long[] Ints => IntList ?? [];

    public static OnnxAttribute Of(string name, long value) => new(name, OnnxAttributeType.Int, Int: value);

    public static OnnxAttribute Of(string name, float value) => new(name, OnnxAttributeType.Float, Float: value);

    public static OnnxAttribute Of(string name, long[] values) => new(name, OnnxAttributeType.Ints, IntList: values);
}

/// <summary>A graph input or output: element type and dimensions (null where symbolic, e.g. the batch).</summary>
public sealed record OnnxValue(string Name, OnnxDataType ElementType, long?[] Dims);

/// <summary>
/// A constant tensor as raw little-endian bytes in ONNX's raw_data layout (INT4 packs two values a byte, the first
/// in the low nibble). The reader converts typed fields (float_data, int32_data, ...) into this one form.
/// </summary>
public sealed record OnnxTensor(string Name, long[] Dims, OnnxDataType DataType, byte[] Raw)
{
    public long Count => Dims.Aggregate(1L, (a, d) => a * d);

    /// <summary>Bytes one element takes in raw_data; 0 for the packed 4-bit types; -1 for types Coldmind does not
    /// read.</summary>
    public static int ElementSize(OnnxDataType type) =>
        type switch
        {
            OnnxDataType.Float or OnnxDataType.Int32 or OnnxDataType.UInt32 => 4,
            OnnxDataType.Int64 or OnnxDataType.Double or OnnxDataType.UInt64 => 8,
            OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Int16 or OnnxDataType.UInt16 => 2,
            OnnxDataType.Int8 or OnnxDataType.UInt8 or OnnxDataType.Bool => 1,
            OnnxDataType.Int4 or OnnxDataType.UInt4 => 0,
            _ => -1,
        };

    /// <summary>Bytes of raw_data for <paramref name="count"/> elements.</summary>
    public static long RawBytes(OnnxDataType type, long count) =>
        ElementSize(type) is var s and > 0 ? s * count : (count + 1) / 2;

    public static OnnxTensor Of(string name, float[] values, params long[] dims)
    {
        var raw = new byte[4 * values.Length];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteSingleLittleEndian(raw.AsSpan(4 * i), values[i]);
        return new OnnxTensor(name, dims, OnnxDataType.Float, raw);
    }

    public static OnnxTensor Of(string name, long[] values, params long[] dims)
    {
        var raw = new byte[8 * values.Length];
        for (int i = 0; i < values.Length; i++)
            BinaryPrimitives.WriteInt64LittleEndian(raw.AsSpan(8 * i), values[i]);
        return new OnnxTensor(name, dims, OnnxDataType.Int64, raw);
    }

    /// <summary>INT8 codes, or INT4 codes (each in −8..7) packed two a byte.</summary>
    public static OnnxTensor Of(string name, sbyte[] values, bool int4, params long[] dims)
    {
        if (!int4)
            return new OnnxTensor(name, dims, OnnxDataType.Int8, values.Select(v => (byte)v).ToArray());
        var raw = new byte[(values.Length + 1) / 2];
        for (int i = 0; i < values.Length; i++)
            raw[i / 2] |= (byte)((values[i] & 0xF) << (4 * (i % 2)));
        return new OnnxTensor(name, dims, OnnxDataType.Int4, raw);
    }

    /// <summary>The values as float32, from any numeric type Coldmind reads (integers as their values).</summary>
    public float[] ToFloats()
    {
        var raw = Raw.AsSpan();
        var values = new float[Count];
        for (int i = 0; i < values.Length; i++)
            values[i] = DataType switch
            {
                OnnxDataType.Float => BinaryPrimitives.ReadSingleLittleEndian(raw[(4 * i)..]),
                OnnxDataType.Double => (float)BinaryPrimitives.ReadDoubleLittleEndian(raw[(8 * i)..]),
                OnnxDataType.Float16 => (float)BinaryPrimitives.ReadHalfLittleEndian(raw[(2 * i)..]),
                OnnxDataType.BFloat16 => BitConverter.Int32BitsToSingle(
                    BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]) << 16
                ),
                _ => ToInt64()[i],
            };
        return values;
    }

    /// <summary>The values as integers, from any integer type Coldmind reads.</summary>
    public long[] ToInt64()
    {
        var raw = Raw.AsSpan();
        var values = new long[Count];
        for (int i = 0; i < values.Length; i++)
            values[i] = DataType switch
            {
                OnnxDataType.Int64 => BinaryPrimitives.ReadInt64LittleEndian(raw[(8 * i)..]),
                OnnxDataType.UInt64 => (long)BinaryPrimitives.ReadUInt64LittleEndian(raw[(8 * i)..]),
                OnnxDataType.Int32 => BinaryPrimitives.ReadInt32LittleEndian(raw[(4 * i)..]),
                OnnxDataType.UInt32 => BinaryPrimitives.ReadUInt32LittleEndian(raw[(4 * i)..]),
                OnnxDataType.Int16 => BinaryPrimitives.ReadInt16LittleEndian(raw[(2 * i)..]),
                OnnxDataType.UInt16 => BinaryPrimitives.ReadUInt16LittleEndian(raw[(2 * i)..]),
                OnnxDataType.Int8 => (sbyte)raw[i],
                OnnxDataType.UInt8 or OnnxDataType.Bool => raw[i],
                OnnxDataType.Int4 => (sbyte)(raw[i / 2] >> (4 * (i % 2)) << 4) >> 4,
                OnnxDataType.UInt4 => (raw[i / 2] >> (4 * (i % 2))) & 0xF,
                _ => throw new ColdmindException(
                    $"Tensor '{Name}' has data type {DataType}, which Coldmind does not read."
                ),
            };
        return values;
    }
}
