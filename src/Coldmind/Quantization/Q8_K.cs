using System.Runtime.InteropServices;

namespace Coldmind.Quantization;

/// <summary>
/// Q8_K, ggml's activation type for dot products with the 256-blocks (Q6_K, TQ1_0, TQ2_0): blocks of 256
/// as <c>{ f32 d; i8 qs[256]; i16 bsums[16]; }</c> = 292 bytes, x ≈ d·q, with the sum of each 16 quants
/// kept so that a kernel can subtract an offset (Σ (c − k)·x = Σ c·x − k·Σ x) without touching x again.
/// As ggml's quantize_row_q8_K_ref: d = −max/127 where max is the value of largest magnitude.
/// </summary>
public static class Q8_K
{
    public const int BlockSize = 256, BytesPerBlock = 292;

    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    public unsafe struct Block
    {
        public float D;
        public fixed sbyte Qs[BlockSize];
        public fixed short BSums[BlockSize / 16];
    }

    public static unsafe void Quantize(ReadOnlySpan<float> x, Span<byte> bytes)
    {
        var blocks = MemoryMarshal.Cast<byte, Block>(bytes);
        for (int b = 0; b < blocks.Length; b++)
        {
            var v = x.Slice(b * BlockSize, BlockSize);
            ref var block = ref blocks[b];
            float amax = 0, max = 0;
            foreach (float f in v)
                if (MathF.Abs(f) > amax) { amax = MathF.Abs(f); max = f; }
            if (amax == 0)
            {
                block = default;
                continue;
            }
            float iscale = -127f / max;
            for (int j = 0; j < BlockSize; j++) block.Qs[j] = (sbyte)Math.Min(127, Q6_K.NearestInt(iscale * v[j]));
            for (int s = 0; s < BlockSize / 16; s++)
            {
                int sum = 0;
                for (int j = 0; j < 16; j++) sum += block.Qs[16 * s + j];
                block.BSums[s] = (short)sum;
            }
            block.D = 1 / iscale;
        }
    }

    public static unsafe void Dequantize(ReadOnlySpan<byte> bytes, Span<float> y)
    {
        var blocks = MemoryMarshal.Cast<byte, Block>(bytes);
        for (int b = 0; b < blocks.Length; b++)
            for (int j = 0; j < BlockSize; j++) y[b * BlockSize + j] = blocks[b].D * blocks[b].Qs[j];
    }
}
