using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Coldmind.Quantization;

namespace Coldmind.Kernels;

/// <summary>
/// y (rows) = W (rows, cols; ternary, <see cref="TernaryMatrix"/>) @ x (cols), the BitNet b1.58 way: x is
/// quantized per tensor to int8 (absmax), the products are integer, and only the final per-row sum is
/// scaled by scale_W · scale_x. With codes q = t + 1, Σ t·x = Σ q·x − Σ x, so the SIMD paths use the
/// unsigned×signed byte multiply-add (maddubs: |q·x| ≤ 254, a pair ≤ 508, four pairs ≤ 2032 fit in i16)
/// and subtract Σ x once per row. Integer arithmetic makes every path equal to the scalar reference bit
/// for bit. Row groups are split statically over the worker pool, one sequential stream per worker.
/// </summary>
public static unsafe class TernaryGemv
{
    /// <summary>Int8 activations, padded with zeros to whole chunks: x ≈ scale · q, q in [−127, 127].</summary>
    public sealed class Activations
    {
        public sbyte[] Values { get; }
        public float Scale { get; }
        public int Sum { get; }

        public Activations(ReadOnlySpan<float> x, int chunks)
        {
            Values = GC.AllocateArray<sbyte>(chunks * TernaryMatrix.ChunkColumns, pinned: true);
            float amax = MathF.Abs(TensorPrimitives.MaxMagnitude(x));
            Scale = amax > 0 ? amax / 127f : 1f;
            float inv = 1f / Scale;
            int sum = 0;
            for (int i = 0; i < x.Length; i++)
            {
                int q = (int)MathF.Round(x[i] * inv, MidpointRounding.AwayFromZero);
                Values[i] = (sbyte)q;
                sum += q;
            }
            Sum = sum;
        }
    }

    /// <summary>y = W @ x, with x quantized to int8 here.</summary>
    public static void Multiply(TernaryMatrix w, ReadOnlySpan<float> x, Span<float> y, WorkerPool? pool = null, SimdPath? path = null)
    {
        if (x.Length != w.Columns || y.Length != w.Rows)
            throw new ColdmindException($"Ternary GEMV: a {w.Rows}×{w.Columns} matrix needs x of {w.Columns} and y of {w.Rows}, got {x.Length} and {y.Length}.");
        Multiply(w, new Activations(x, w.Chunks), y, pool, path);
    }

    public static void Multiply(TernaryMatrix w, Activations x, Span<float> y, WorkerPool? pool = null, SimdPath? path = null)
    {
        pool ??= WorkerPool.Shared;
        var p = path ?? Simd.Best;
        int groups = w.Groups, parts = WorkerPool.InsideJob ? 1 : Math.Min(pool.Threads, groups);
        float scale = w.Scale * x.Scale;
        fixed (float* py = y)
        {
            nint yPtr = (nint)py;
            fixed (sbyte* px = x.Values)
            {
                nint xPtr = (nint)px;
                pool.Run(parts, part =>
                {
                    int* dots = stackalloc int[TernaryMatrix.RowsPerGroup];
                    for (int g = part * groups / parts; g < (part + 1) * groups / parts; g++)
                    {
                        byte* wg = w.GroupStart(g * TernaryMatrix.RowsPerGroup, 0);
                        Group(p, wg, (sbyte*)xPtr, w.Chunks, dots);
                        for (int r = 0; r < TernaryMatrix.RowsPerGroup && g * TernaryMatrix.RowsPerGroup + r < w.Rows; r++)
                            ((float*)yPtr)[g * TernaryMatrix.RowsPerGroup + r] = (dots[r] - x.Sum) * scale;
                    }
                });
            }
        }
    }

    /// <summary>The reference: Σ_c t(r, c) · x_c per row, one trit at a time.</summary>
    public static void MultiplyReference(TernaryMatrix w, Activations x, Span<float> y)
    {
        float scale = w.Scale * x.Scale;
        for (int r = 0; r < w.Rows; r++)
        {
            int dot = 0;
            for (int c = 0; c < w.Columns; c++) dot += w.Trit(r, c) * x.Values[c];
            y[r] = dot * scale;
        }
    }

    /// <summary>Σ q·x for the four rows of a group (dots[0..3]), on the chosen path.</summary>
    private static void Group(SimdPath path, byte* w, sbyte* x, int chunks, int* dots)
    {
        if (path == SimdPath.Vector512 && Avx512BW.IsSupported) Group512(w, x, chunks, dots);
        else if (path >= SimdPath.Vector256 && Avx2.IsSupported) Group256(w, x, chunks, dots);
        else if (path >= SimdPath.Vector128 && Ssse3.IsSupported) Group128(w, x, chunks, dots);
        else GroupScalar(w, x, chunks, dots);
    }

    private static void GroupScalar(byte* w, sbyte* x, int chunks, int* dots)
    {
        for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) dots[r] = 0;
        for (int c = 0; c < chunks; c++, x += TernaryMatrix.ChunkColumns)
            for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++, w += TernaryMatrix.GroupBytes)
                for (int i = 0; i < TernaryMatrix.GroupBytes; i++)
                    for (int l = 0; l < 4; l++) dots[r] += ((w[i] >> (2 * l)) & 3) * x[64 * l + i];
    }

    /// <summary>Chunks whose i16 partial sums can be added before widening: 16 × 2032 = 32 512 ≤ 32 767.</summary>
    private const int ChunksPerWiden = 16;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Group512(byte* w, sbyte* x, int chunks, int* dots)
    {
        var ones = Vector512.Create((short)1);
        var a0 = Vector512<int>.Zero; var a1 = a0; var a2 = a0; var a3 = a0;
        for (int c0 = 0; c0 < chunks; c0 += ChunksPerWiden)
        {
            var s0 = Vector512<short>.Zero; var s1 = s0; var s2 = s0; var s3 = s0;
            for (int c = c0; c < Math.Min(chunks, c0 + ChunksPerWiden); c++, x += 256, w += 256)
            {
                var x0 = Vector512.Load(x); var x1 = Vector512.Load(x + 64); var x2 = Vector512.Load(x + 128); var x3 = Vector512.Load(x + 192);
                s0 += Row512(w, x0, x1, x2, x3);
                s1 += Row512(w + 64, x0, x1, x2, x3);
                s2 += Row512(w + 128, x0, x1, x2, x3);
                s3 += Row512(w + 192, x0, x1, x2, x3);
            }
            a0 += Avx512BW.MultiplyAddAdjacent(s0, ones); a1 += Avx512BW.MultiplyAddAdjacent(s1, ones);
            a2 += Avx512BW.MultiplyAddAdjacent(s2, ones); a3 += Avx512BW.MultiplyAddAdjacent(s3, ones);
        }
        dots[0] = Vector512.Sum(a0); dots[1] = Vector512.Sum(a1); dots[2] = Vector512.Sum(a2); dots[3] = Vector512.Sum(a3);
    }

    /// <summary>One row's 64-byte group against a 256-value activation chunk: the four code planes through maddubs, in i16 (≤ 2032 a lane).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<short> Row512(byte* w, Vector512<sbyte> x0, Vector512<sbyte> x1, Vector512<sbyte> x2, Vector512<sbyte> x3)
    {
        var mask = Vector512.Create((byte)3);
        var b = Vector512.Load(w);
        return Avx512BW.MultiplyAddAdjacent(b & mask, x0)
             + Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(b.AsUInt16(), 2).AsByte() & mask, x1)
             + Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(b.AsUInt16(), 4).AsByte() & mask, x2)
             + Avx512BW.MultiplyAddAdjacent(Vector512.ShiftRightLogical(b.AsUInt16(), 6).AsByte() & mask, x3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Group256(byte* w, sbyte* x, int chunks, int* dots)
    {
        var acc = stackalloc Vector256<int>[TernaryMatrix.RowsPerGroup];
        for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) acc[r] = Vector256<int>.Zero;
        for (int c = 0; c < chunks; c++, x += 256)
            for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++, w += 64)
                for (int half = 0; half < 64; half += 32)
                {
                    var mask = Vector256.Create((byte)3);
                    var b = Vector256.Load(w + half);
                    var s = Avx2.MultiplyAddAdjacent(b & mask, Vector256.Load(x + half))
                          + Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(b.AsUInt16(), 2).AsByte() & mask, Vector256.Load(x + 64 + half))
                          + Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(b.AsUInt16(), 4).AsByte() & mask, Vector256.Load(x + 128 + half))
                          + Avx2.MultiplyAddAdjacent(Vector256.ShiftRightLogical(b.AsUInt16(), 6).AsByte() & mask, Vector256.Load(x + 192 + half));
                    acc[r] += Avx2.MultiplyAddAdjacent(s, Vector256.Create((short)1));
                }
        for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) dots[r] = Vector256.Sum(acc[r]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Group128(byte* w, sbyte* x, int chunks, int* dots)
    {
        var acc = stackalloc Vector128<int>[TernaryMatrix.RowsPerGroup];
        for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) acc[r] = Vector128<int>.Zero;
        for (int c = 0; c < chunks; c++, x += 256)
            for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++, w += 64)
                for (int part = 0; part < 64; part += 16)
                {
                    var mask = Vector128.Create((byte)3);
                    var b = Vector128.Load(w + part);
                    var s = Ssse3.MultiplyAddAdjacent(b & mask, Vector128.Load(x + part))
                          + Ssse3.MultiplyAddAdjacent(Vector128.ShiftRightLogical(b.AsUInt16(), 2).AsByte() & mask, Vector128.Load(x + 64 + part))
                          + Ssse3.MultiplyAddAdjacent(Vector128.ShiftRightLogical(b.AsUInt16(), 4).AsByte() & mask, Vector128.Load(x + 128 + part))
                          + Ssse3.MultiplyAddAdjacent(Vector128.ShiftRightLogical(b.AsUInt16(), 6).AsByte() & mask, Vector128.Load(x + 192 + part));
                    acc[r] += Sse2.MultiplyAddAdjacent(s, Vector128.Create((short)1));
                }
        for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) dots[r] = Vector128.Sum(acc[r]);
    }
}
