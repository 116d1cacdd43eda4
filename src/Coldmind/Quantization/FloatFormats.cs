using System.Buffers.Binary;

namespace Coldmind.Quantization;

/// <summary>F32, F16 (IEEE half) and BF16 (bfloat16) rows, little-endian, as ggml stores them.</summary>
internal static class FloatFormats
{
    public static void QuantizeF32(ReadOnlySpan<float> x, Span<byte> y)
    {
        for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(y[(4 * i)..], x[i]);
    }

    public static void DequantizeF32(ReadOnlySpan<byte> x, Span<float> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = BinaryPrimitives.ReadSingleLittleEndian(x[(4 * i)..]);
    }

    /// <summary>Round to nearest even, as ggml's GGML_FP32_TO_FP16 (F16C's vcvtps2ph) does.</summary>
    public static void QuantizeF16(ReadOnlySpan<float> x, Span<byte> y)
    {
        for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteHalfLittleEndian(y[(2 * i)..], (Half)x[i]);
    }

    public static void DequantizeF16(ReadOnlySpan<byte> x, Span<float> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(x[(2 * i)..]);
    }

    public static void QuantizeBF16(ReadOnlySpan<float> x, Span<byte> y)
    {
        for (int i = 0; i < x.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(y[(2 * i)..], ToBF16(x[i]));
    }

    public static void DequantizeBF16(ReadOnlySpan<byte> x, Span<float> y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = FromBF16(BinaryPrimitives.ReadUInt16LittleEndian(x[(2 * i)..]));
    }

    /// <summary>ggml_compute_fp32_to_bf16: NaN forced quiet, otherwise round to nearest even.</summary>
    public static ushort ToBF16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7fffffff) > 0x7f800000) return (ushort)((bits >> 16) | 64);
        return (ushort)((bits + (0x7fff + ((bits >> 16) & 1))) >> 16);
    }

    public static float FromBF16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);
}
