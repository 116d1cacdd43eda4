namespace Coldmind.Quantization;

/// <summary>
/// Packs the codes of a <see cref="PtqScheme"/> densely for storage: int8 a byte each, int4 two a byte, int2 four,
/// binary eight (low bits first, each code offset to be non-negative), and ternary five trits a byte as
/// Σ (tᵢ + 1)·3ⁱ, the 1.6 bits a weight that <see cref="PtqScheme.CodeBits"/> counts.
/// </summary>
public static class CodePacking
{
    private static readonly int[] Pow3 = [1, 3, 9, 27, 81];

    /// <summary>Codes a byte holds.</summary>
    public static int PerByte(PtqMethod method) => method switch
    {
        PtqMethod.Int8 => 1, PtqMethod.Int4 => 2, PtqMethod.Int2 => 4, PtqMethod.Ternary => 5, _ => 8,
    };

    public static long ByteCount(long codes, PtqMethod method) => (codes + PerByte(method) - 1) / PerByte(method);

    public static byte[] Pack(ReadOnlySpan<sbyte> codes, PtqMethod method)
    {
        var (min, max) = PtqScheme.CodeRange(method);
        int per = PerByte(method), bits = 8 / per;
        var packed = new byte[ByteCount(codes.Length, method)];
        for (int i = 0; i < codes.Length; i++)
        {
            int c = codes[i];
            if (c < min || c > max || (method == PtqMethod.Binary && c == 0))
                throw new ColdmindException($"Code {c} at {i} is outside what {method} stores.");
            int slot = i % per;
            packed[i / per] += method switch
            {
                PtqMethod.Ternary => (byte)((c + 1) * Pow3[slot]),
                PtqMethod.Binary => (byte)((c > 0 ? 1 : 0) << slot),
                _ => (byte)((c - min) << (bits * slot)),
            };
        }
        return packed;
    }

    /// <summary>The <paramref name="codes"/>.Length codes in <paramref name="packed"/>; a byte no packing writes is an error.</summary>
    public static void Unpack(ReadOnlySpan<byte> packed, PtqMethod method, Span<sbyte> codes)
    {
        if (packed.Length != ByteCount(codes.Length, method))
            throw new ColdmindException($"{packed.Length} bytes hold {PerByte(method)} {method} codes each, not {codes.Length}.");
        var (min, max) = PtqScheme.CodeRange(method);
        int per = PerByte(method), bits = 8 / per, mask = (1 << bits) - 1;
        for (int i = 0; i < codes.Length; i++)
        {
            int b = packed[i / per], slot = i % per;
            int c = method switch
            {
                PtqMethod.Ternary => b < 243 ? b / Pow3[slot] % 3 - 1 : int.MaxValue,
                PtqMethod.Binary => ((b >> slot) & 1) == 1 ? 1 : -1,
                _ => ((b >> (bits * slot)) & mask) + min,
            };
            if (c > max) throw new ColdmindException($"Byte {i / per} ({b}) is not {method} codes as packing writes them.");
            codes[i] = (sbyte)c;
        }
    }
}
