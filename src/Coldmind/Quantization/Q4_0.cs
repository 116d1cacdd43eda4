using System.Runtime.InteropServices;

namespace Coldmind.Quantization;

/// <summary>
/// Q4_0 (4.5 bits per weight): blocks of 32 as <c>{ f16 d; u8 qs[16]; }</c> = 18 bytes, x ≈ d·(q − 8) with
/// q in 0..15, d = (the value of largest magnitude) / −8; byte j holds element j (low nibble) and j + 16
/// (high nibble). Byte-compatible with ggml's quantize_row_q4_0_ref / dequantize_row_q4_0.
/// </summary>
public static class Q4_0
{
    public const int BlockSize = 32, BytesPerBlock = 18;

    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    public unsafe struct Block
    {
        public Half D;
        public fixed byte Qs[BlockSize / 2];
    }

    public static unsafe void Quantize(ReadOnlySpan<float> x, Span<byte> bytes)
    {
        var blocks = MemoryMarshal.Cast<byte, Block>(bytes);
        for (int b = 0; b < blocks.Length; b++)
        {
            var v = x.Slice(b * BlockSize, BlockSize);
            float amax = 0, max = 0;
            foreach (float f in v)
                if (amax < MathF.Abs(f)) { amax = MathF.Abs(f); max = f; }
            float d = max / -8, id = d != 0 ? 1f / d : 0f;
            blocks[b].D = (Half)d;
            for (int j = 0; j < BlockSize / 2; j++)
            {
                int lo = Math.Min(15, (int)(v[j] * id + 8.5f));           // C: (int8_t)(x + 8.5f), truncation
                int hi = Math.Min(15, (int)(v[j + BlockSize / 2] * id + 8.5f));
                blocks[b].Qs[j] = (byte)(lo | (hi << 4));
            }
        }
    }

    public static unsafe void Dequantize(ReadOnlySpan<byte> bytes, Span<float> y)
    {
        var blocks = MemoryMarshal.Cast<byte, Block>(bytes);
        for (int b = 0; b < blocks.Length; b++)
        {
            float d = (float)blocks[b].D;
            for (int j = 0; j < BlockSize / 2; j++)
            {
                y[b * BlockSize + j] = ((blocks[b].Qs[j] & 0x0F) - 8) * d;
                y[b * BlockSize + j + BlockSize / 2] = ((blocks[b].Qs[j] >> 4) - 8) * d;
            }
        }
    }
}
