using System.Runtime.InteropServices;

namespace Coldmind.Quantization;

/// <summary>
/// TQ2_0 (2.0625 bits per weight): ternary blocks of 256 as <c>{ u8 qs[64]; f16 d; }</c> = 66 bytes,
/// x = d·(q − 1), q in {0, 1, 2}, d = max|x|. Byte j + m of each 32-byte group holds, in bit pairs 0–1, 2–3,
/// 4–5, 6–7, the elements m, m + 32, m + 64, m + 96 of that group's 128 values.
/// Byte-compatible with ggml's quantize_row_tq2_0_ref / dequantize_row_tq2_0.
/// </summary>
public static class TQ2_0
{
    public const int BlockSize = 256, BytesPerBlock = 66;

    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    public unsafe struct Block
    {
        public fixed byte Qs[BlockSize / 4];
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
            for (int j = 0, p = 0; j < BlockSize / 4; j += 32, p += 128)
                for (int m = 0; m < 32; m++)
                {
                    int q = 0;
                    for (int n = 0; n < 4; n++) q += (Ternary.Trit(v[p + m + n * 32], id) & 3) << (2 * n);
                    blocks[b].Qs[j + m] = (byte)q;
                }
        }
    }

    public static unsafe void Dequantize(ReadOnlySpan<byte> bytes, Span<float> y)
    {
        var blocks = MemoryMarshal.Cast<byte, Block>(bytes);
        int o = 0;
        for (int b = 0; b < blocks.Length; b++)
        {
            float d = (float)blocks[b].D;
            for (int j = 0; j < BlockSize / 4; j += 32)
                for (int l = 0; l < 4; l++)
                    for (int m = 0; m < 32; m++)
                        y[o++] = (((blocks[b].Qs[j + m] >> (2 * l)) & 3) - 1) * d;
        }
    }
}

/// <summary>What the ternary formats share: the absmax scale and the trit of a value.</summary>
internal static class Ternary
{
    /// <summary>d = max|x| over the block; returns 1/d (0 for an all-zero block).</summary>
    public static float InverseScale(ReadOnlySpan<float> v, out float d)
    {
        float amax = 0;
        foreach (float f in v) amax = MathF.Max(amax, MathF.Abs(f));
        d = amax;
        return d != 0 ? 1f / d : 0f;
    }

    /// <summary>lroundf(x·id) + 1: −1, 0, 1 → 0, 1, 2 (halves round away from zero, as C's lroundf).</summary>
    public static int Trit(float x, float id) => (int)MathF.Round(x * id, MidpointRounding.AwayFromZero) + 1;
}
