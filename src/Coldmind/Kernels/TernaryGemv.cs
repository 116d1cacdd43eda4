using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using System.Runtime.Intrinsics;
using Coldmind.Numerics;
using Coldmind.Quantization;

namespace Coldmind.Kernels;

/// <summary>
/// y (rows) = W (rows, cols; ternary, <see cref="TernaryMatrix"/>) @ x (cols), the BitNet b1.58 way: x is
/// quantized per tensor to int8 (absmax), the products are integer, and only the final per-row sum is
/// scaled by scale_W · scale_x. With codes q = t + 1, Σ t·x = Σ q·x − Σ x, so the SIMD paths use the
/// unsigned×signed byte multiply-add (maddubs: |q·x| ≤ 254, a pair ≤ 508, four pairs ≤ 2032 fit in i16)
/// and subtract Σ x once per row. <see cref="TernaryKernel.AddSubtract"/> instead does no multiplication at
/// all: each trit selects adding, subtracting or skipping its activation. Integer arithmetic makes every
/// path of both kernels equal to the scalar reference bit for bit. Row groups are split statically over
/// the worker pool, one sequential stream per worker.
/// </summary>
public static unsafe class TernaryGemv
{
    /// <summary>Int8 activations (<see cref="BitNetQuantizer.QuantizeInt8"/>), padded with zeros to whole chunks: x ≈ Scale · Values.</summary>
    public sealed class Activations
    {
        /// <summary>Pinned (on the pinned-object heap), so kernels take its address without pinning it again.</summary>
        public sbyte[] Values { get; }
        public float Scale { get; private set; }
        public int Sum { get; private set; }

        public Activations(int chunks) => Values = GC.AllocateArray<sbyte>(chunks * TernaryMatrix.ChunkColumns, pinned: true);

        public Activations(ReadOnlySpan<float> x, int chunks) : this(chunks) => Set(x);

        /// <summary>Quantizes <paramref name="x"/> into this buffer, so one buffer serves token after token.</summary>
        public void Set(ReadOnlySpan<float> x)
        {
            if (x.Length > Values.Length) throw new ColdmindException($"{x.Length} activations do not fit a buffer of {Values.Length}.");
            Values.AsSpan(x.Length).Clear();
            Scale = BitNetQuantizer.QuantizeInt8(x, Values);
            int sum = 0;
            foreach (sbyte v in Values) sum += v;
            Sum = sum;
        }

        internal sbyte* Pointer => (sbyte*)System.Runtime.InteropServices.Marshal.UnsafeAddrOfPinnedArrayElement(Values, 0);
    }

    /// <summary>y = W @ x, with x quantized to int8 here.</summary>
    public static void Multiply(TernaryMatrix w, ReadOnlySpan<float> x, Span<float> y, WorkerPool? pool = null, SimdPath? path = null,
        TernaryKernel kernel = TernaryKernel.MultiplyAdd)
    {
        if (x.Length != w.Columns || y.Length != w.Rows)
            throw new ColdmindException($"Ternary GEMV: a {w.Rows}×{w.Columns} matrix needs x of {w.Columns} and y of {w.Rows}, got {x.Length} and {y.Length}.");
        Multiply(w, new Activations(x, w.Chunks), y, pool, path, kernel);
    }

    public static void Multiply(TernaryMatrix w, Activations x, Span<float> y, WorkerPool? pool = null, SimdPath? path = null,
        TernaryKernel kernel = TernaryKernel.MultiplyAdd)
    {
        pool ??= WorkerPool.Shared;
        var p = path ?? Simd.Best;
        int groups = w.Groups, parts = Math.Min(pool.AvailableThreads, groups);
        float scale = w.Scale * x.Scale;
        int bias = kernel == TernaryKernel.MultiplyAdd ? x.Sum : 0; // maddubs sums q·x = (t + 1)·x; add/subtract sums t·x
        nint xPtr = (nint)x.Pointer;
        fixed (float* py = y)
        {
            nint yPtr = (nint)py;
            pool.Run(parts, part =>
            {
                int* dots = stackalloc int[TernaryMatrix.RowsPerGroup];
                for (int g = part * groups / parts; g < (part + 1) * groups / parts; g++)
                {
                    byte* wg = w.GroupStart(g * TernaryMatrix.RowsPerGroup, 0);
                    if (kernel == TernaryKernel.MultiplyAdd) Group(p, wg, (sbyte*)xPtr, w.Chunks, dots);
                    else GroupAddSubtract(p, wg, (sbyte*)xPtr, w.Chunks, dots);
                    Store(w, scale, bias, g, dots, (float*)yPtr);
                }
            });
        }
    }

    /// <summary>Tokens a GEMM tile multiplies with each decoded row group.</summary>
    public const int TileTokens = 4;

    /// <summary>
    /// Y (tokens × rows) = X Wᵀ for a batch of tokens (a prompt), each token's activations quantized on their
    /// own. With AVX-512 the codes of each row group are decoded once per chunk and multiplied with
    /// <see cref="TileTokens"/> tokens (4 rows × 4 tokens of i16 partial sums); leftover tokens, and the other
    /// paths, run the GEMV kernel per token. All paths give the same integers, so the result equals a GEMV per token.
    /// </summary>
    public static void Multiply(TernaryMatrix w, IReadOnlyList<Activations> x, Span<float> y, WorkerPool? pool = null, SimdPath? path = null)
    {
        int tokens = x.Count;
        if (y.Length != (long)tokens * w.Rows) throw new ColdmindException($"Ternary GEMM: {tokens} tokens × {w.Rows} rows need y of {(long)tokens * w.Rows}, got {y.Length}.");
        foreach (var a in x)
            if (a.Values.Length != w.Chunks * TernaryMatrix.ChunkColumns) throw new ColdmindException($"Ternary GEMM: activations of {a.Values.Length} values for a matrix of {w.Chunks} chunks.");
        pool ??= WorkerPool.Shared;
        var p = path ?? Simd.Best;
        bool tiled = p == SimdPath.Vector512 && Avx512BW.IsSupported;
        int groups = w.Groups, parts = Math.Min(pool.AvailableThreads, groups), rows = w.Rows;
        var xPtrs = x.Select(a => (nint)a.Pointer).ToArray();
        fixed (float* py = y)
        {
            nint yPtr = (nint)py;
            pool.Run(parts, part =>
            {
                int* dots = stackalloc int[TernaryMatrix.RowsPerGroup * TileTokens];
                sbyte** tile = stackalloc sbyte*[TileTokens];
                for (int g = part * groups / parts; g < (part + 1) * groups / parts; g++)
                {
                    byte* wg = w.GroupStart(g * TernaryMatrix.RowsPerGroup, 0);
                    int t = 0;
                    for (; tiled && t + TileTokens <= tokens; t += TileTokens)
                    {
                        for (int k = 0; k < TileTokens; k++) tile[k] = (sbyte*)xPtrs[t + k];
                        GroupTile512(wg, tile, w.Chunks, dots);
                        for (int k = 0; k < TileTokens; k++) Store(w, w.Scale * x[t + k].Scale, x[t + k].Sum, g, dots + k * TernaryMatrix.RowsPerGroup, (float*)yPtr + (long)(t + k) * rows);
                    }
                    for (; t < tokens; t++)
                    {
                        Group(p, wg, (sbyte*)xPtrs[t], w.Chunks, dots);
                        Store(w, w.Scale * x[t].Scale, x[t].Sum, g, dots, (float*)yPtr + (long)t * rows);
                    }
                }
            });
        }
    }

    /// <summary>y[rows of group g] = (dots − bias) · scale, for the rows the matrix has (the last group may be padding).</summary>
    private static void Store(TernaryMatrix w, float scale, int bias, int g, int* dots, float* y)
    {
        for (int r = 0; r < TernaryMatrix.RowsPerGroup && g * TernaryMatrix.RowsPerGroup + r < w.Rows; r++)
            y[g * TernaryMatrix.RowsPerGroup + r] = (dots[r] - bias) * scale;
    }

    /// <summary>
    /// Σ q·x of a row group's four rows with four tokens' activations (dots[4·token + row]): each row's 64-byte
    /// group is split into its four code planes once per chunk and meets the four tokens' chunks there.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void GroupTile512(byte* w, sbyte** x, int chunks, int* dots)
    {
        const int Pairs = TernaryMatrix.RowsPerGroup * TileTokens;
        var mask = Vector512.Create((byte)3);
        var ones = Vector512.Create((short)1);
        var acc = stackalloc Vector512<int>[Pairs];
        var sums = stackalloc Vector512<short>[Pairs];
        for (int i = 0; i < Pairs; i++) acc[i] = Vector512<int>.Zero;
        for (int c0 = 0; c0 < chunks; c0 += ChunksPerWiden)
        {
            for (int i = 0; i < Pairs; i++) sums[i] = Vector512<short>.Zero;
            for (int c = c0; c < Math.Min(chunks, c0 + ChunksPerWiden); c++)
                for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++)
                {
                    var b = Vector512.Load(w + ((long)c * TernaryMatrix.RowsPerGroup + r) * TernaryMatrix.GroupBytes);
                    var q0 = b & mask;
                    var q1 = Vector512.ShiftRightLogical(b.AsUInt16(), 2).AsByte() & mask;
                    var q2 = Vector512.ShiftRightLogical(b.AsUInt16(), 4).AsByte() & mask;
                    var q3 = Vector512.ShiftRightLogical(b.AsUInt16(), 6).AsByte() & mask;
                    for (int t = 0; t < TileTokens; t++)
                    {
                        sbyte* xc = x[t] + c * TernaryMatrix.ChunkColumns;
                        sums[t * TernaryMatrix.RowsPerGroup + r] +=
                              Avx512BW.MultiplyAddAdjacent(q0, Vector512.Load(xc)) + Avx512BW.MultiplyAddAdjacent(q1, Vector512.Load(xc + 64))
                            + Avx512BW.MultiplyAddAdjacent(q2, Vector512.Load(xc + 128)) + Avx512BW.MultiplyAddAdjacent(q3, Vector512.Load(xc + 192));
                    }
                }
            for (int i = 0; i < Pairs; i++) acc[i] += Avx512BW.MultiplyAddAdjacent(sums[i], ones);
        }
        for (int i = 0; i < Pairs; i++) dots[i] = Vector512.Sum(acc[i]);
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

    /// <summary>Σ t·x for the four rows of a group with additions and subtractions only.</summary>
    private static void GroupAddSubtract(SimdPath path, byte* w, sbyte* x, int chunks, int* dots)
    {
        if (path == SimdPath.Vector512 && Vector512.IsHardwareAccelerated) AddSubtract512(w, x, chunks, dots);
        else if (path >= SimdPath.Vector256 && Vector256.IsHardwareAccelerated) AddSubtract256(w, x, chunks, dots);
        else AddSubtractScalar(w, x, chunks, dots);
    }

    private static void AddSubtractScalar(byte* w, sbyte* x, int chunks, int* dots)
    {
        for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) dots[r] = 0;
        for (int c = 0; c < chunks; c++, x += TernaryMatrix.ChunkColumns)
            for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++, w += TernaryMatrix.GroupBytes)
                for (int i = 0; i < TernaryMatrix.GroupBytes; i++)
                    for (int l = 0; l < 4; l++)
                    {
                        int code = (w[i] >> (2 * l)) & 3, v = x[64 * l + i];
                        dots[r] += code == 2 ? v : code == 0 ? -v : 0;
                    }
    }

    /// <summary>
    /// Chunks an i16 add/subtract accumulator takes before widening. A 512-bit lane receives 8 activations a
    /// chunk (4 planes × 2 halves; 32 × 8 × 127 = 32 512 ≤ 32 767), a 256-bit lane 16 (16 × 16 × 127 = 32 512).
    /// </summary>
    private const int AddSubtract512ChunksPerWiden = 32, AddSubtract256ChunksPerWiden = 16;

    /// <summary>
    /// Activations widened once per chunk to 16 lanes-of-i16 vectors; for each row and code plane, trit +1
    /// lanes add, −1 lanes subtract (masked vpaddw / vpsubw), 0 lanes keep. Partial sums are widened by sign
    /// extension, so no instruction multiplies.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddSubtract512(byte* w, sbyte* x, int chunks, int* dots)
    {
        var xs = stackalloc Vector512<short>[8]; // the chunk's 256 activations: plane l, half h at [2l + h]
        var acc = stackalloc Vector512<int>[TernaryMatrix.RowsPerGroup];
        for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) acc[r] = Vector512<int>.Zero;
        var three = Vector512.Create((short)3);
        var plus = Vector512.Create((short)2);
        var s = stackalloc Vector512<short>[TernaryMatrix.RowsPerGroup];
        for (int c0 = 0; c0 < chunks; c0 += AddSubtract512ChunksPerWiden)
        {
            for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) s[r] = Vector512<short>.Zero;
            for (int c = c0; c < Math.Min(chunks, c0 + AddSubtract512ChunksPerWiden); c++, x += 256)
            {
                for (int l = 0; l < 4; l++)
                {
                    var v = Vector512.Load(x + 64 * l);
                    xs[2 * l] = Vector512.WidenLower(v);
                    xs[2 * l + 1] = Vector512.WidenUpper(v);
                }
                for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++, w += 64)
                {
                    var b = Vector512.Load(w);
                    var lo = Vector512.WidenLower(b).AsInt16();
                    var hi = Vector512.WidenUpper(b).AsInt16();
                    var sum = s[r];
                    for (int l = 0; l < 4; l++)
                    {
                        var qlo = Vector512.ShiftRightLogical(lo, 2 * l) & three;
                        var qhi = Vector512.ShiftRightLogical(hi, 2 * l) & three;
                        sum = Vector512.ConditionalSelect(Vector512.Equals(qlo, plus), sum + xs[2 * l], sum);
                        sum = Vector512.ConditionalSelect(Vector512.Equals(qlo, Vector512<short>.Zero), sum - xs[2 * l], sum);
                        sum = Vector512.ConditionalSelect(Vector512.Equals(qhi, plus), sum + xs[2 * l + 1], sum);
                        sum = Vector512.ConditionalSelect(Vector512.Equals(qhi, Vector512<short>.Zero), sum - xs[2 * l + 1], sum);
                    }
                    s[r] = sum;
                }
            }
            for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) acc[r] += Vector512.WidenLower(s[r]) + Vector512.WidenUpper(s[r]);
        }
        for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) dots[r] = Vector512.Sum(acc[r]);
    }

    /// <summary><see cref="AddSubtract512"/> on 256-bit vectors: each 64-byte group as two 32-byte halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AddSubtract256(byte* w, sbyte* x, int chunks, int* dots)
    {
        var xs = stackalloc Vector256<short>[16]; // plane l, quarter k at [4l + k]
        var acc = stackalloc Vector256<int>[TernaryMatrix.RowsPerGroup];
        for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) acc[r] = Vector256<int>.Zero;
        var three = Vector256.Create((short)3);
        var plus = Vector256.Create((short)2);
        var s = stackalloc Vector256<short>[TernaryMatrix.RowsPerGroup];
        for (int c0 = 0; c0 < chunks; c0 += AddSubtract256ChunksPerWiden)
        {
            for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) s[r] = Vector256<short>.Zero;
            for (int c = c0; c < Math.Min(chunks, c0 + AddSubtract256ChunksPerWiden); c++, x += 256)
            {
                for (int l = 0; l < 4; l++)
                    for (int h = 0; h < 2; h++)
                    {
                        var v = Vector256.Load(x + 64 * l + 32 * h);
                        xs[4 * l + 2 * h] = Vector256.WidenLower(v);
                        xs[4 * l + 2 * h + 1] = Vector256.WidenUpper(v);
                    }
                for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++, w += 64)
                {
                    var sum = s[r];
                    for (int h = 0; h < 2; h++)
                    {
                        var b = Vector256.Load(w + 32 * h);
                        var lo = Vector256.WidenLower(b).AsInt16();
                        var hi = Vector256.WidenUpper(b).AsInt16();
                        for (int l = 0; l < 4; l++)
                        {
                            var qlo = Vector256.ShiftRightLogical(lo, 2 * l) & three;
                            var qhi = Vector256.ShiftRightLogical(hi, 2 * l) & three;
                            sum = Vector256.ConditionalSelect(Vector256.Equals(qlo, plus), sum + xs[4 * l + 2 * h], sum);
                            sum = Vector256.ConditionalSelect(Vector256.Equals(qlo, Vector256<short>.Zero), sum - xs[4 * l + 2 * h], sum);
                            sum = Vector256.ConditionalSelect(Vector256.Equals(qhi, plus), sum + xs[4 * l + 2 * h + 1], sum);
                            sum = Vector256.ConditionalSelect(Vector256.Equals(qhi, Vector256<short>.Zero), sum - xs[4 * l + 2 * h + 1], sum);
                        }
                    }
                    s[r] = sum;
                }
            }
            for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) acc[r] += Vector256.WidenLower(s[r]) + Vector256.WidenUpper(s[r]);
        }
        for (int r = 0; r < TernaryMatrix.RowsPerGroup; r++) dots[r] = Vector256.Sum(acc[r]);
    }
}

/// <summary>How the ternary GEMV turns trits into sums.</summary>
public enum TernaryKernel
{
    /// <summary>Byte multiply-add of the codes q = t + 1 (maddubs), as llama.cpp and bitnet.cpp do.</summary>
    MultiplyAdd,
    /// <summary>No multiplications: each trit selects adding, subtracting or skipping its activation.</summary>
    AddSubtract,
}
