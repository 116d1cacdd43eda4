using System.Runtime.InteropServices;

namespace Coldmind.Quantization;

/// <summary>
/// TQ1_0 (1.6875 bits per weight): ternary blocks of 256 as <c>{ u8 qs[48]; u8 qh[4]; f16 d; }</c> = 54 bytes,
/// x = d·(q − 1). Five trits per byte (3⁵ = 243 ≤ 256) stored as a fixed-point fraction, ⌈t·256/243⌉, so
/// that multiplying by 3 shifts the next trit into the top bits: trit n of byte q is ((q·3ⁿ mod 256)·3) >> 8.
/// qs[0..32) hold elements m + 32n (n = 0..4) of the first 160 values, qs[32..48) elements m + 16n of the
/// next 80, and qh[j] the last 16 values j + 4n (n = 0..3). Byte-compatible with ggml's
/// quantize_row_tq1_0_ref / dequantize_row_tq1_0.
/// </summary>
public static class TQ1_0
{
    public const int BlockSize = 256, BytesPerBlock = 54;
    private static readonly byte[] Pow3 = [1, 3, 9, 27, 81, 243];

    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    public unsafe struct Block
    {
        public fixed byte Qs[48];
        public fixed byte Qh[4];
        public Half D;
    }

    public static unsafe void Quantize(ReadOnlySpan<float> x, Span<byte> bytes)
    {
        var blocks = MemoryMarshal.Cast<byte, Block>(bytes);
        for (int b = 0; b < blocks.Length; b++)
        {
            var v = x.Slice(b * BlockSize, BlockSize);
            float id = Ternary.InverseScale(v, out float d);
            blocks[b].D = (Half)d;
            for (int m = 0; m < 32; m++) blocks[b].Qs[m] = Pack(v, 0 + m, 32, 5, id);
            for (int m = 0; m < 16; m++) blocks[b].Qs[32 + m] = Pack(v, 160 + m, 16, 5, id);
            for (int j = 0; j < 4; j++) blocks[b].Qh[j] = Pack(v, 240 + j, 4, 4, id);
        }
    }

    /// <summary>Trits of v[start], v[start + stride], … (most significant first) as ⌈t·256/243⌉, padded to 5 trits.</summary>
    private static byte Pack(ReadOnlySpan<float> v, int start, int stride, int count, float id)
    {
        int q = 0;
        for (int n = 0; n < count; n++) q = q * 3 + Ternary.Trit(v[start + n * stride], id);
        for (int n = count; n < 5; n++) q *= 3;
        return (byte)((q * 256 + 242) / 243);
    }

    public static unsafe void Dequantize(ReadOnlySpan<byte> bytes, Span<float> y)
    {
        var blocks = MemoryMarshal.Cast<byte, Block>(bytes);
        Span<sbyte> trits = stackalloc sbyte[BlockSize];
        for (int b = 0; b < blocks.Length; b++)
        {
            Trits(blocks[b], trits);
            float d = (float)blocks[b].D;
            for (int j = 0; j < BlockSize; j++) y[b * BlockSize + j] = trits[j] * d;
        }
    }

    /// <summary>The block's 256 trits (−1, 0, 1) in element order.</summary>
    public static unsafe void Trits(in Block block, Span<sbyte> trits)
    {
        int o = 0;
        for (int n = 0; n < 5; n++) for (int m = 0; m < 32; m++) trits[o++] = (sbyte)Unpack(block.Qs[m], n);
        for (int n = 0; n < 5; n++) for (int m = 0; m < 16; m++) trits[o++] = (sbyte)Unpack(block.Qs[32 + m], n);
        for (int n = 0; n < 4; n++) for (int j = 0; j < 4; j++) trits[o++] = (sbyte)Unpack(block.Qh[j], n);
    }

    /// <summary>Trit n of a packed byte, as −1, 0 or 1.</summary>
    private static int Unpack(byte q, int n) => ((byte)(q * Pow3[n]) * 3 >> 8) - 1;
}
