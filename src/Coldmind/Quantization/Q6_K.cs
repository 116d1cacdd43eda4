using System.Runtime.InteropServices;

namespace Coldmind.Quantization;

/// <summary>
/// Q6_K (6.5625 bits per weight), what llama.cpp uses for token embeddings and output heads: super-blocks of
/// 256 as <c>{ u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d; }</c> = 210 bytes; 16 sub-blocks of 16 values,
/// x = d · scales[s] · (q − 32) with 6-bit q split into low nibbles (ql) and high bit pairs (qh).
/// Unpacking is bit-identical to ggml's dequantize_row_q6_K; packing (ggml's iterative scale search) is not
/// implemented yet.
/// </summary>
public static class Q6_K
{
    public const int BlockSize = 256, BytesPerBlock = 210;

    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    public unsafe struct Block
    {
        public fixed byte Ql[BlockSize / 2];
        public fixed byte Qh[BlockSize / 4];
        public fixed sbyte Scales[BlockSize / 16];
        public Half D;
    }

    public static unsafe void Dequantize(ReadOnlySpan<byte> bytes, Span<float> y)
    {
        var blocks = MemoryMarshal.Cast<byte, Block>(bytes);
        int o = 0;
        for (int b = 0; b < blocks.Length; b++)
        {
            float d = (float)blocks[b].D;
            fixed (byte* qlBase = blocks[b].Ql, qhBase = blocks[b].Qh)
            fixed (sbyte* scBase = blocks[b].Scales)
            {
                byte* ql = qlBase, qh = qhBase;
                sbyte* sc = scBase;
                for (int n = 0; n < BlockSize; n += 128, o += 128, ql += 64, qh += 32, sc += 8)
                    for (int l = 0; l < 32; l++)
                    {
                        int s = l / 16;
                        int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                        int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                        int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                        int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                        // (d · scale) · q in float, in ggml's order, for bit-identical values
                        y[o + l] = d * sc[s] * q1;
                        y[o + l + 32] = d * sc[s + 2] * q2;
                        y[o + l + 64] = d * sc[s + 4] * q3;
                        y[o + l + 96] = d * sc[s + 6] * q4;
                    }
            }
        }
    }
}
