using System.Runtime.InteropServices;

namespace Coldmind.Quantization;

/// <summary>
/// Q6_K (6.5625 bits per weight), what llama.cpp uses for token embeddings and output heads: super-blocks of
/// 256 as <c>{ u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d; }</c> = 210 bytes; 16 sub-blocks of 16 values,
/// x = d · scales[s] · (q − 32) with 6-bit q split into low nibbles (ql) and high bit pairs (qh).
/// Packing follows ggml's quantize_row_q6_K_ref (a weighted least-squares scale search per sub-block,
/// then 8-bit sub-block scales under an f16 super-scale); unpacking follows dequantize_row_q6_K.
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

    private const float GroupMaxEps = 1e-15f;

    public static unsafe void Quantize(ReadOnlySpan<float> x, Span<byte> bytes)
    {
        var blocks = MemoryMarshal.Cast<byte, Block>(bytes);
        Span<sbyte> levels = stackalloc sbyte[BlockSize];
        Span<float> scales = stackalloc float[BlockSize / 16];
        for (int b = 0; b < blocks.Length; b++)
        {
            var v = x.Slice(b * BlockSize, BlockSize);
            float maxScale = 0, maxAbsScale = 0;
            for (int s = 0; s < BlockSize / 16; s++)
            {
                float scale = MakeQxQuants(v.Slice(16 * s, 16), levels.Slice(16 * s, 16), 32);
                scales[s] = scale;
                if (MathF.Abs(scale) > maxAbsScale) { maxAbsScale = MathF.Abs(scale); maxScale = scale; }
            }
            ref var block = ref blocks[b];
            if (maxAbsScale < GroupMaxEps)
            {
                block = default;
                continue;
            }
            float iscale = -128f / maxScale;
            block.D = (Half)(1 / iscale);
            for (int s = 0; s < BlockSize / 16; s++) block.Scales[s] = (sbyte)Math.Min(127, NearestInt(iscale * scales[s]));
            for (int s = 0; s < BlockSize / 16; s++)
            {
                float d = (float)block.D * block.Scales[s];
                if (d == 0) continue;
                for (int i = 0; i < 16; i++)
                    levels[16 * s + i] = (sbyte)(Math.Clamp(NearestInt(v[16 * s + i] / d), -32, 31) + 32);
            }
            for (int j = 0, o = 0; j < BlockSize; j += 128, o++)
                for (int l = 0; l < 32; l++)
                {
                    int q1 = levels[j + l], q2 = levels[j + l + 32], q3 = levels[j + l + 64], q4 = levels[j + l + 96];
                    block.Ql[64 * o + l] = (byte)((q1 & 0xF) | ((q3 & 0xF) << 4));
                    block.Ql[64 * o + l + 32] = (byte)((q2 & 0xF) | ((q4 & 0xF) << 4));
                    block.Qh[32 * o + l] = (byte)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
                }
        }
    }

    /// <summary>
    /// ggml's make_qx_quants with rmse_type 1 (weights x²): levels in [0, 2·nmax) for the scale that minimises
    /// the weighted squared error, trying 19 candidate scales around −nmax / (the value of largest magnitude).
    /// </summary>
    private static float MakeQxQuants(ReadOnlySpan<float> x, Span<sbyte> levels, int nmax)
    {
        float max = 0, amax = 0;
        foreach (float f in x)
            if (MathF.Abs(f) > amax) { amax = MathF.Abs(f); max = f; }
        if (amax < GroupMaxEps)
        {
            levels.Clear();
            return 0;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < x.Length; i++)
        {
            int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
            levels[i] = (sbyte)(l + nmax);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0f;
        float best = scale * sumlx;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < x.Length; i++)
            {
                int l = Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1);
                float w = x[i] * x[i];
                sumlx += w * x[i] * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2)
            {
                for (int i = 0; i < x.Length; i++) levels[i] = (sbyte)(nmax + Math.Clamp(NearestInt(iscale * x[i]), -nmax, nmax - 1));
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /// <summary>ggml's nearest_int: round half to even via the 1.5·2²³ float trick (|x| ≤ 4 194 303).</summary>
    internal static int NearestInt(float x) => (BitConverter.SingleToInt32Bits(x + 12582912f) & 0x007fffff) - 0x00400000;

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
