using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using System.Runtime.Intrinsics;
using Coldmind.Numerics;
using Coldmind.Quantization;

namespace Coldmind.Kernels;

/// <summary>
/// Σ row·x over <paramref name="n"/> values: the row packed in a weight type, x already packed in that type's
/// dot type (<see cref="CpuTraits.DotFormat"/>), as ggml's vec_dot. The path is the widest the kernel may use.
/// </summary>
public unsafe delegate float VecDot(byte* row, byte* x, int n, SimdPath path);

/// <summary>
/// The dot kernels of the traits table, each beside its scalar reference, with SSSE3 (Vector128) and AVX2
/// (Vector256) paths for Q8_0, Q4_0 and TQ2_0 and AVX2 for Q6_K and TQ1_0; no AVX-512 path, since meeting
/// these block layouts in 512-bit vectors takes cross-lane shuffles that measured slower here (the runtime's
/// repacked <see cref="TernaryMatrix"/> layout is where AVX-512 pays). The quantized ones sum integer
/// products per block exactly and scale each block's sum once; the SIMD paths keep the scaled sums in float
/// lanes (no horizontal sum per block), as ggml does, so they agree with the reference to rounding.
/// f16 block scales go through a 64 K-entry table: the hot scales stay cached and no conversion code runs.
/// </summary>
public static unsafe class VecDots
{
    private const int FloatChunk = 256;

    private static readonly float* HalfTable = BuildHalfTable();

    private static float* BuildHalfTable()
    {
        var table = (float*)System.Runtime.InteropServices.NativeMemory.AlignedAlloc(65536 * sizeof(float), 64);
        for (int i = 0; i < 65536; i++) table[i] = (float)BitConverter.UInt16BitsToHalf((ushort)i);
        return table;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float ToSingle(Half h) => HalfTable[BitConverter.HalfToUInt16Bits(h)];

    public static float F32(byte* w, byte* x, int n, SimdPath path) =>
        path == SimdPath.Scalar ? DotReference((float*)w, (float*)x, n) : TensorPrimitives.Dot(new ReadOnlySpan<float>(w, n), new ReadOnlySpan<float>(x, n));

    /// <summary>F16 weights against F32 x, converted a chunk at a time.</summary>
    public static float F16(byte* w, byte* x, int n, SimdPath path)
    {
        float* buffer = stackalloc float[FloatChunk];
        float sum = 0;
        for (int i = 0; i < n; i += FloatChunk)
        {
            int len = Math.Min(FloatChunk, n - i);
            TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)w + i, len), new Span<float>(buffer, len));
            sum += F32((byte*)buffer, (byte*)((float*)x + i), len, path);
        }
        return sum;
    }

    /// <summary>BF16 weights against F32 x: a bf16 is the top half of a float32.</summary>
    public static float BF16(byte* w, byte* x, int n, SimdPath path)
    {
        float* buffer = stackalloc float[FloatChunk];
        float sum = 0;
        for (int i = 0; i < n; i += FloatChunk)
        {
            int len = Math.Min(FloatChunk, n - i);
            for (int j = 0; j < len; j++) buffer[j] = BitConverter.Int32BitsToSingle(((ushort*)w)[i + j] << 16);
            sum += F32((byte*)buffer, (byte*)((float*)x + i), len, path);
        }
        return sum;
    }

    private static float DotReference(float* a, float* b, int n)
    {
        float sum = 0;
        for (int i = 0; i < n; i++) sum += a[i] * b[i];
        return sum;
    }

    // ---- Q8_0 · Q8_0 -------------------------------------------------------------------------------

    public static float Q8_0(byte* w, byte* x, int n, SimdPath path) =>
        path >= SimdPath.Vector256 && Avx2.IsSupported ? Q8_0Avx2(w, x, n)
        : path >= SimdPath.Vector128 && Ssse3.IsSupported ? Q8_0Ssse3(w, x, n) : Q8_0Reference(w, x, n);

    public static float Q8_0Reference(byte* w, byte* x, int n)
    {
        var wb = (Quantization.Q8_0.Block*)w;
        var xb = (Quantization.Q8_0.Block*)x;
        float sum = 0;
        for (int b = 0; b < n / Quantization.Q8_0.BlockSize; b++, wb++, xb++)
        {
            int dot = 0;
            for (int j = 0; j < Quantization.Q8_0.BlockSize; j++) dot += wb->Qs[j] * xb->Qs[j];
            sum += (float)wb->D * (float)xb->D * dot;
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q8_0Avx2(byte* w, byte* x, int n)
    {
        var wb = (Quantization.Q8_0.Block*)w;
        var xb = (Quantization.Q8_0.Block*)x;
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < n / Quantization.Q8_0.BlockSize; b++, wb++, xb++)
        {
            var dot = SignedDot(Avx.LoadVector256(wb->Qs), Avx.LoadVector256(xb->Qs));
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(ToSingle(wb->D) * ToSingle(xb->D)), Avx.ConvertToVector256Single(dot), acc);
        }
        return Vector256.Sum(acc);
    }

    /// <summary><see cref="Q8_0Avx2"/> on 128-bit vectors: each block as two 16-byte halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q8_0Ssse3(byte* w, byte* x, int n)
    {
        var wb = (Quantization.Q8_0.Block*)w;
        var xb = (Quantization.Q8_0.Block*)x;
        var acc = Vector128<float>.Zero;
        for (int b = 0; b < n / Quantization.Q8_0.BlockSize; b++, wb++, xb++)
        {
            var dot = SignedDot(Vector128.Load(wb->Qs), Vector128.Load(xb->Qs)) + SignedDot(Vector128.Load(wb->Qs + 16), Vector128.Load(xb->Qs + 16));
            acc += Vector128.Create(ToSingle(wb->D) * ToSingle(xb->D)) * Sse2.ConvertToVector128Single(dot);
        }
        return Vector128.Sum(acc);
    }

    /// <summary>Four partial sums of w·x for 16 signed bytes (SSSE3's maddubs, as <see cref="SignedDot(Vector256{sbyte}, Vector256{sbyte})"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> SignedDot(Vector128<sbyte> w, Vector128<sbyte> x) =>
        Sse2.MultiplyAddAdjacent(Ssse3.MultiplyAddAdjacent(Ssse3.Abs(w), Ssse3.Sign(x, w)), Vector128.Create((short)1));

    /// <summary>
    /// Eight partial sums of w·x for 32 signed bytes. maddubs multiplies unsigned by signed, so it takes |w|
    /// and x with w's sign (|w|, |x| ≤ 127: a pair ≤ 32 258 fits i16).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SignedDot(Vector256<sbyte> w, Vector256<sbyte> x) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx2.Abs(w), Avx2.Sign(x, w)), Vector256.Create((short)1));

    // ---- Q4_0 · Q8_0 -------------------------------------------------------------------------------

    public static float Q4_0(byte* w, byte* x, int n, SimdPath path) =>
        path >= SimdPath.Vector256 && Avx2.IsSupported ? Q4_0Avx2(w, x, n)
        : path >= SimdPath.Vector128 && Ssse3.IsSupported ? Q4_0Ssse3(w, x, n) : Q4_0Reference(w, x, n);

    public static float Q4_0Reference(byte* w, byte* x, int n)
    {
        var wb = (Quantization.Q4_0.Block*)w;
        var xb = (Quantization.Q8_0.Block*)x;
        float sum = 0;
        for (int b = 0; b < n / Quantization.Q4_0.BlockSize; b++, wb++, xb++)
        {
            int dot = 0;
            for (int j = 0; j < Quantization.Q4_0.BlockSize / 2; j++)
                dot += ((wb->Qs[j] & 0xF) - 8) * xb->Qs[j] + ((wb->Qs[j] >> 4) - 8) * xb->Qs[j + 16];
            sum += (float)wb->D * (float)xb->D * dot;
        }
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q4_0Avx2(byte* w, byte* x, int n)
    {
        var wb = (Quantization.Q4_0.Block*)w;
        var xb = (Quantization.Q8_0.Block*)x;
        var acc = Vector256<float>.Zero;
        var nibble = Vector256.Create((byte)0xF);
        var eight = Vector256.Create((sbyte)8);
        for (int b = 0; b < n / Quantization.Q4_0.BlockSize; b++, wb++, xb++)
        {
            var packed = Vector128.Load(wb->Qs);
            // elements 0..15 are the low nibbles, 16..31 the high ones
            var codes = Vector256.Create(packed, Vector128.ShiftRightLogical(packed.AsUInt16(), 4).AsByte()) & nibble;
            var dot = SignedDot(codes.AsSByte() - eight, Avx.LoadVector256(xb->Qs));
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(ToSingle(wb->D) * ToSingle(xb->D)), Avx.ConvertToVector256Single(dot), acc);
        }
        return Vector256.Sum(acc);
    }

    /// <summary><see cref="Q4_0Avx2"/> on 128-bit vectors: low nibbles meet x[0..16), high nibbles x[16..32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q4_0Ssse3(byte* w, byte* x, int n)
    {
        var wb = (Quantization.Q4_0.Block*)w;
        var xb = (Quantization.Q8_0.Block*)x;
        var acc = Vector128<float>.Zero;
        var nibble = Vector128.Create((byte)0xF);
        var eight = Vector128.Create((sbyte)8);
        for (int b = 0; b < n / Quantization.Q4_0.BlockSize; b++, wb++, xb++)
        {
            var packed = Vector128.Load(wb->Qs);
            var low = (packed & nibble).AsSByte() - eight;
            var high = (Vector128.ShiftRightLogical(packed.AsUInt16(), 4).AsByte() & nibble).AsSByte() - eight;
            var dot = SignedDot(low, Vector128.Load(xb->Qs)) + SignedDot(high, Vector128.Load(xb->Qs + 16));
            acc += Vector128.Create(ToSingle(wb->D) * ToSingle(xb->D)) * Sse2.ConvertToVector128Single(dot);
        }
        return Vector128.Sum(acc);
    }

    // ---- TQ2_0 · Q8_K ------------------------------------------------------------------------------

    public static float TQ2_0(byte* w, byte* x, int n, SimdPath path) =>
        path >= SimdPath.Vector256 && Avx2.IsSupported ? TQ2_0Avx2(w, x, n)
        : path >= SimdPath.Vector128 && Ssse3.IsSupported ? TQ2_0Ssse3(w, x, n) : TQ2_0Reference(w, x, n);

    public static float TQ2_0Reference(byte* w, byte* x, int n)
    {
        var wb = (Quantization.TQ2_0.Block*)w;
        var xb = (Q8_K.Block*)x;
        float sum = 0;
        for (int b = 0; b < n / Quantization.TQ2_0.BlockSize; b++, wb++, xb++)
        {
            int dot = 0;
            for (int j = 0; j < 64; j += 32)
                for (int l = 0; l < 4; l++)
                    for (int m = 0; m < 32; m++)
                        dot += (((wb->Qs[j + m] >> (2 * l)) & 3) - 1) * xb->Qs[4 * j + 32 * l + m];
            sum += dot * (xb->D * (float)wb->D);
        }
        return sum;
    }

    /// <summary>Σ q·x on the codes q = t + 1 through maddubs (four planes: ≤ 2 032 an i16 lane), then − Σ x from the block sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float TQ2_0Avx2(byte* w, byte* x, int n)
    {
        var wb = (Quantization.TQ2_0.Block*)w;
        var xb = (Q8_K.Block*)x;
        var mask = Vector256.Create((byte)3);
        var ones = Vector256.Create((short)1);
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < n / Quantization.TQ2_0.BlockSize; b++, wb++, xb++)
        {
            var dot = -BlockSums(xb);
            for (int j = 0; j < 64; j += 32)
            {
                var q = Avx.LoadVector256(wb->Qs + j);
                sbyte* xs = xb->Qs + 4 * j;
                var s = Avx2.MultiplyAddAdjacent(q & mask, Avx.LoadVector256(xs))
                      + Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(q.AsUInt16(), 2).AsByte() & mask, Avx.LoadVector256(xs + 32))
                      + Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & mask, Avx.LoadVector256(xs + 64))
                      + Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(q.AsUInt16(), 6).AsByte() & mask, Avx.LoadVector256(xs + 96));
                dot += Avx2.MultiplyAddAdjacent(s, ones);
            }
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(xb->D * ToSingle(wb->D)), Avx.ConvertToVector256Single(dot), acc);
        }
        return Vector256.Sum(acc);
    }

    /// <summary><see cref="TQ2_0Avx2"/> on 128-bit vectors: each 32-byte code group as two 16-byte halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float TQ2_0Ssse3(byte* w, byte* x, int n)
    {
        var wb = (Quantization.TQ2_0.Block*)w;
        var xb = (Q8_K.Block*)x;
        var mask = Vector128.Create((byte)3);
        var ones = Vector128.Create((short)1);
        var acc = Vector128<float>.Zero;
        for (int b = 0; b < n / Quantization.TQ2_0.BlockSize; b++, wb++, xb++)
        {
            var sums = Vector128.Load(xb->BSums);
            var dot = -Sse2.MultiplyAddAdjacent(sums, ones) - Sse2.MultiplyAddAdjacent(Vector128.Load(xb->BSums + 8), ones);
            for (int j = 0; j < 64; j += 16)
            {
                var q = Vector128.Load(wb->Qs + j);
                sbyte* xs = xb->Qs + 128 * (j / 32) + j % 32;
                var s = Ssse3.MultiplyAddAdjacent(q & mask, Vector128.Load(xs))
                      + Ssse3.MultiplyAddAdjacent(Vector128.ShiftRightLogical(q.AsUInt16(), 2).AsByte() & mask, Vector128.Load(xs + 32))
                      + Ssse3.MultiplyAddAdjacent(Vector128.ShiftRightLogical(q.AsUInt16(), 4).AsByte() & mask, Vector128.Load(xs + 64))
                      + Ssse3.MultiplyAddAdjacent(Vector128.ShiftRightLogical(q.AsUInt16(), 6).AsByte() & mask, Vector128.Load(xs + 96));
                dot += Sse2.MultiplyAddAdjacent(s, ones);
            }
            acc += Vector128.Create(xb->D * ToSingle(wb->D)) * Sse2.ConvertToVector128Single(dot);
        }
        return Vector128.Sum(acc);
    }

    /// <summary>The block's Σ x as eight i32 lanes (from its sixteen 16-value sums).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> BlockSums(Q8_K.Block* x) => Avx2.MultiplyAddAdjacent(Vector256.Load(x->BSums), Vector256.Create((short)1));

    // ---- TQ1_0 · Q8_K ------------------------------------------------------------------------------

    public static float TQ1_0(byte* w, byte* x, int n, SimdPath path) =>
        path >= SimdPath.Vector256 && Avx2.IsSupported ? TQ1_0Avx2(w, x, n) : TQ1_0Reference(w, x, n);

    public static float TQ1_0Reference(byte* w, byte* x, int n)
    {
        var wb = (Quantization.TQ1_0.Block*)w;
        var xb = (Q8_K.Block*)x;
        Span<sbyte> trits = stackalloc sbyte[Quantization.TQ1_0.BlockSize];
        float sum = 0;
        for (int b = 0; b < n / Quantization.TQ1_0.BlockSize; b++, wb++, xb++)
        {
            Quantization.TQ1_0.Trits(*wb, trits);
            int dot = 0;
            for (int j = 0; j < Quantization.TQ1_0.BlockSize; j++) dot += trits[j] * xb->Qs[j];
            sum += dot * (xb->D * (float)wb->D);
        }
        return sum;
    }

    /// <summary>
    /// Decodes each block's five-trits-a-byte codes into 256 bytes q = t + 1 (16-bit lanes: trit k of byte q
    /// is ((q·3ᵏ mod 256)·3) >> 8), then the maddubs dot of <see cref="TQ2_0Avx2"/> on contiguous codes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float TQ1_0Avx2(byte* w, byte* x, int n)
    {
        var wb = (Quantization.TQ1_0.Block*)w;
        var xb = (Q8_K.Block*)x;
        byte* codes = stackalloc byte[Quantization.TQ1_0.BlockSize];
        var ones = Vector256.Create((short)1);
        var acc = Vector256<float>.Zero;
        for (int b = 0; b < n / Quantization.TQ1_0.BlockSize; b++, wb++, xb++)
        {
            var q0 = Vector256.WidenLower(Avx.LoadVector256(wb->Qs));
            var q1 = Vector256.WidenUpper(Avx.LoadVector256(wb->Qs));
            var q2 = Vector256.WidenLower(Vector256.Create(Vector128.Load(wb->Qs + 32), Vector128<byte>.Zero));
            ushort pow = 1;
            for (int k = 0; k < 5; k++, pow *= 3)
            {
                Vector256.Narrow(Trit(q0, pow), Trit(q1, pow)).Store(codes + 32 * k);
                Vector256.Narrow(Trit(q2, pow), Vector256<ushort>.Zero).GetLower().Store(codes + 160 + 16 * k);
            }
            for (int k = 0, p = 1; k < 4; k++, p *= 3)
                for (int j = 0; j < 4; j++) codes[240 + 4 * k + j] = (byte)((byte)(wb->Qh[j] * p) * 3 >> 8);
            var dot = -BlockSums(xb);
            for (int j = 0; j < Quantization.TQ1_0.BlockSize; j += 32)
                dot += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Avx.LoadVector256(codes + j), Avx.LoadVector256(xb->Qs + j)), ones);
            acc = Vector256.FusedMultiplyAdd(Vector256.Create(xb->D * ToSingle(wb->D)), Avx.ConvertToVector256Single(dot), acc);
        }
        return Vector256.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ushort> Trit(Vector256<ushort> q, ushort pow3) =>
        Vector256.ShiftRightLogical(((q * pow3) & Vector256.Create((ushort)0xFF)) * 3, 8);

    // ---- Q6_K · Q8_K -------------------------------------------------------------------------------

    public static float Q6_K(byte* w, byte* x, int n, SimdPath path) =>
        path >= SimdPath.Vector256 && Avx2.IsSupported ? Q6_KAvx2(w, x, n) : Q6_KReference(w, x, n);

    public static float Q6_KReference(byte* w, byte* x, int n)
    {
        var wb = (Quantization.Q6_K.Block*)w;
        var xb = (Q8_K.Block*)x;
        float sum = 0;
        for (int b = 0; b < n / Quantization.Q6_K.BlockSize; b++, wb++, xb++)
        {
            int dot = 0;
            for (int half = 0; half < 2; half++)
            {
                byte* ql = wb->Ql + 64 * half, qh = wb->Qh + 32 * half;
                sbyte* sc = wb->Scales + 8 * half, xs = xb->Qs + 128 * half;
                for (int l = 0; l < 32; l++)
                {
                    int q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    int s = l / 16;
                    dot += sc[s] * q1 * xs[l] + sc[s + 2] * q2 * xs[l + 32] + sc[s + 4] * q3 * xs[l + 64] + sc[s + 6] * q4 * xs[l + 96];
                }
            }
            sum += dot * (xb->D * (float)wb->D);
        }
        return sum;
    }

    /// <summary>
    /// ggml's AVX2 scheme: rebuild the 6-bit codes q in 0..63, maddubs them with x (a pair ≤ 16 002), take
    /// 32·x off the same way, then weight each 16-value sub-block by its scale with madd into i32.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Q6_KAvx2(byte* w, byte* x, int n)
    {
        var wb = (Quantization.Q6_K.Block*)w;
        var xb = (Q8_K.Block*)x;
        var low = Vector256.Create((byte)0xF);
        var pair = Vector256.Create((ushort)0x0303);
        var sum = Vector256<float>.Zero;
        for (int b = 0; b < n / Quantization.Q6_K.BlockSize; b++, wb++, xb++)
        {
            var acc = Vector256<int>.Zero;
            for (int half = 0; half < 2; half++)
            {
                byte* ql = wb->Ql + 64 * half, qh = wb->Qh + 32 * half;
                sbyte* sc = wb->Scales + 8 * half, xs = xb->Qs + 128 * half;
                var lo0 = Avx.LoadVector256(ql);
                var lo1 = Avx.LoadVector256(ql + 32);
                var hi = Avx.LoadVector256(qh).AsUInt16();
                var c0 = (lo0 & low) | Vector256.ShiftLeft(hi & pair, 4).AsByte();
                var c1 = (lo1 & low) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(hi, 2) & pair, 4).AsByte();
                var c2 = (Vector256.ShiftRightLogical(lo0.AsUInt16(), 4).AsByte() & low) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(hi, 4) & pair, 4).AsByte();
                var c3 = (Vector256.ShiftRightLogical(lo1.AsUInt16(), 4).AsByte() & low) | Vector256.ShiftLeft(Vector256.ShiftRightLogical(hi, 6) & pair, 4).AsByte();
                acc += SubBlocks(c0, xs, sc) + SubBlocks(c1, xs + 32, sc + 2) + SubBlocks(c2, xs + 64, sc + 4) + SubBlocks(c3, xs + 96, sc + 6);
            }
            sum = Vector256.FusedMultiplyAdd(Vector256.Create(xb->D * ToSingle(wb->D)), Avx.ConvertToVector256Single(acc), sum);
        }
        return Vector256.Sum(sum);
    }

    /// <summary>Σ scale·(q − 32)·x over two 16-value sub-blocks (32 codes), as eight i32 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> SubBlocks(Vector256<byte> codes, sbyte* xs, sbyte* scales)
    {
        var xv = Avx.LoadVector256(xs);
        var p = Avx2.MultiplyAddAdjacent(codes, xv) - Avx2.MultiplyAddAdjacent(Vector256.Create((byte)32), xv);
        var s = Vector256.Create(Vector128.Create((short)scales[0]), Vector128.Create((short)scales[1]));
        return Avx2.MultiplyAddAdjacent(p, s);
    }
}
