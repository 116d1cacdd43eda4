namespace Coldmind.Quantization;

/// <summary>ggml's tensor types, with the numeric ids GGUF files store (ggml.h).</summary>
public enum GgmlType : uint
{
    F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
    Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
    IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21, IQ2_S = 22, IQ4_XS = 23,
    I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28, IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35,
}

/// <summary>values (n) → packed blocks (n / BlockSize × BytesPerBlock).</summary>
public delegate void Quantizer(ReadOnlySpan<float> values, Span<byte> blocks);

/// <summary>packed blocks → values.</summary>
public delegate void Dequantizer(ReadOnlySpan<byte> blocks, Span<float> values);

/// <summary>
/// What ggml's type_traits table says of a type: block geometry and, where Coldmind implements the
/// format, its converters (null otherwise: such tensors can be read, sized and copied, not unpacked). The
/// CPU's side (dot kernels) is <c>Kernels.CpuTypeTraits</c>, as ggml keeps type_traits_cpu apart.
/// </summary>
public sealed record TypeTraits(GgmlType Type, string Name, int BlockSize, int BytesPerBlock, Quantizer? FromFloat = null, Dequantizer? ToFloat = null,
    bool ActivationOnly = false)
{
    public bool CanPack => FromFloat != null;
    public bool CanUnpack => ToFloat != null;
    /// <summary>Packable types that files hold (not the activation-only ones, such as Q8_K in ggml).</summary>
    public bool ForFiles => CanPack && CanUnpack && !ActivationOnly;

    public double BitsPerWeight => 8.0 * BytesPerBlock / BlockSize;

    /// <summary>Bytes that <paramref name="count"/> values occupy; the count must fill whole blocks.</summary>
    public long ByteCount(long count)
    {
        if (count < 0 || count % BlockSize != 0)
            throw new ColdmindException($"{Name} packs values in blocks of {BlockSize}; {count} values do not fill whole blocks.");
        long blocks = count / BlockSize;
        if (blocks > long.MaxValue / BytesPerBlock) throw new ColdmindException($"{count} {Name} values would take more bytes than any file holds.");
        return blocks * BytesPerBlock;
    }

    /// <summary>Packs values into a new byte array.</summary>
    public byte[] Quantize(ReadOnlySpan<float> values)
    {
        var pack = FromFloat ?? throw NotImplemented("packed");
        var blocks = new byte[ByteCount(values.Length)];
        pack(values, blocks);
        return blocks;
    }

    /// <summary>Unpacks <paramref name="count"/> values from blocks.</summary>
    public float[] Dequantize(ReadOnlySpan<byte> blocks, int count)
    {
        var unpack = ToFloat ?? throw NotImplemented("unpacked");
        if (blocks.Length != ByteCount(count))
            throw new ColdmindException($"{Name}: {blocks.Length} bytes do not hold {count} values ({ByteCount(count)} bytes expected).");
        var values = new float[count];
        unpack(blocks, values);
        return values;
    }

    private ColdmindException NotImplemented(string verb) => new(
        $"{Name} blocks cannot be {verb} by Coldmind yet; it packs and unpacks {string.Join(", ", GgmlTypes.Supported.Select(t => t.Name))}.");
}

/// <summary>
/// The traits of every ggml type: one table, no switches elsewhere. Geometry as ggml's type_traits
/// (block sizes and sizeof of each block struct, read off libggml-base); converters for the formats
/// Coldmind implements.
/// </summary>
public static class GgmlTypes
{
    private static readonly Dictionary<GgmlType, TypeTraits> Table = new TypeTraits[]
    {
        new(GgmlType.F32, "F32", 1, 4, FloatFormats.QuantizeF32, FloatFormats.DequantizeF32),
        new(GgmlType.F16, "F16", 1, 2, FloatFormats.QuantizeF16, FloatFormats.DequantizeF16),
        new(GgmlType.BF16, "BF16", 1, 2, FloatFormats.QuantizeBF16, FloatFormats.DequantizeBF16),
        new(GgmlType.Q8_0, "Q8_0", Q8_0.BlockSize, Q8_0.BytesPerBlock, Q8_0.Quantize, Q8_0.Dequantize),
        new(GgmlType.Q4_0, "Q4_0", Q4_0.BlockSize, Q4_0.BytesPerBlock, Q4_0.Quantize, Q4_0.Dequantize),
        new(GgmlType.TQ1_0, "TQ1_0", TQ1_0.BlockSize, TQ1_0.BytesPerBlock, TQ1_0.Quantize, TQ1_0.Dequantize),
        new(GgmlType.TQ2_0, "TQ2_0", TQ2_0.BlockSize, TQ2_0.BytesPerBlock, TQ2_0.Quantize, TQ2_0.Dequantize),
        new(GgmlType.Q6_K, "Q6_K", Q6_K.BlockSize, Q6_K.BytesPerBlock, Q6_K.Quantize, Q6_K.Dequantize),
        new(GgmlType.Q8_K, "Q8_K", Q8_K.BlockSize, Q8_K.BytesPerBlock, Q8_K.Quantize, Q8_K.Dequantize, ActivationOnly: true),
        new(GgmlType.Q4_1, "Q4_1", 32, 20), new(GgmlType.Q5_0, "Q5_0", 32, 22), new(GgmlType.Q5_1, "Q5_1", 32, 24),
        new(GgmlType.Q8_1, "Q8_1", 32, 36), new(GgmlType.Q2_K, "Q2_K", 256, 84), new(GgmlType.Q3_K, "Q3_K", 256, 110),
        new(GgmlType.Q4_K, "Q4_K", 256, 144), new(GgmlType.Q5_K, "Q5_K", 256, 176),
new(GgmlType.IQ2_XXS, "IQ2_XXS", 256, 66), new(GgmlType.IQ2_XS, "IQ2_XS", 256, 74),
        new(GgmlType.IQ3_XXS, "IQ3_XXS", 256, 98), new(GgmlType.IQ1_S, "IQ1_S", 256, 50), new(GgmlType.IQ4_NL, "IQ4_NL", 32, 18),
        new(GgmlType.IQ3_S, "IQ3_S", 256, 110), new(GgmlType.IQ2_S, "IQ2_S", 256, 82), new(GgmlType.IQ4_XS, "IQ4_XS", 256, 136),
        new(GgmlType.I8, "I8", 1, 1), new(GgmlType.I16, "I16", 1, 2), new(GgmlType.I32, "I32", 1, 4), new(GgmlType.I64, "I64", 1, 8),
        new(GgmlType.F64, "F64", 1, 8), new(GgmlType.IQ1_M, "IQ1_M", 256, 56),
    }.ToDictionary(t => t.Type);

    /// <summary>The types Coldmind can both pack and unpack in files.</summary>
    public static IReadOnlyList<TypeTraits> Supported { get; } = Table.Values.Where(t => t.ForFiles).ToArray();

    public static TypeTraits Traits(GgmlType type) => Table.TryGetValue(type, out var traits) ? traits
        : throw new ColdmindException($"Unknown ggml tensor type id {(uint)type}.");

    /// <summary>A type Coldmind can pack, by name (case-insensitive), e.g. for `--type tq2_0`.</summary>
    public static TypeTraits Parse(string name) =>
        Supported.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ColdmindException($"Unknown tensor type '{name}'; Coldmind packs {string.Join(", ", Supported.Select(t => t.Name.ToLowerInvariant()))}.");
}
