using System.Runtime.InteropServices;

namespace Coldmind.Quantization;

/// <summary>
/// Q8_0 (8.5 bits per weight): blocks of 32 as <c>{ f16 d; int8 qs[32]; }</c> = 34 bytes, x ≈ d·q with
/// d = max|x| / 127. Byte-compatible with ggml's quantize_row_q8_0_ref / dequantize_row_q8_0.
/// </summary>
public static class Q8_0
{
    public const int BlockSize = 32, BytesPerBlock = 34;

    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    public unsafe struct Block
    {
        public Half D;
        public fixed sbyte Qs[BlockSize];
    }

    public static unsafe void Quantize(ReadOnlySpan<float> x, Span<byte> bytes)
    {
        var blocks = MemoryMarshal.Cast<byte, Block>(bytes);
        for (int b = 0; b < blocks.Length; b++)
        {
            var v = x.Slice(b * BlockSize, BlockSize);
            float amax = 0;
            foreach (float f in v) amax = MathF.Max(amax, MathF.Abs(f));
            float d = amax / 127, id = d != 0 ? 1f / d : 0f;
            blocks[b].D = (Half)d;
            for (int j = 0; j < BlockSize; j++) blocks[b].Qs[j] = (sbyte)MathF.Round(v[j] * id, MidpointRounding.AwayFromZero);
        }
    }

    public static unsafe void Dequantize(ReadOnlySpan<byte> bytes, Span<float> y)
    {
        var blocks = MemoryMarshal.Cast<byte, Block>(bytes);
        for (int b = 0; b < blocks.Length; b++)
        {
            float d = (float)blocks[b].D;
            for (int j = 0; j < BlockSize; j++) y[b * BlockSize + j] = blocks[b].Qs[j] * d;
        }
    }
}
