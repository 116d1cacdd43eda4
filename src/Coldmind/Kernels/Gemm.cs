using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Coldmind.Numerics;

namespace Coldmind.Kernels;

/// <summary>
/// Single-precision GEMM, C (m,n) (+)= A (m,k) @ B (k,n), in the BLIS structure: B is packed into
/// KC×NR column slivers and A into MR×KC row slivers so that the micro-kernel streams both from
/// cache with unit stride, keeping an MR×NR tile of C in 12 vector registers. Any row/column strides
/// are accepted — a transposed operand is just packed differently — so the autodiff backward passes
/// (A^T·B, A·B^T) need no transposed copies.
/// Threads split C into column (or row) bands; each element is summed in the same order whatever the
/// split, so results are bit-identical for any thread count.
/// </summary>
public static unsafe class Gemm
{
    private const int MR = 6;      // rows of the C tile held in registers
    private const int KC = 256;    // largest depth of one packed block (A sliver 6 KB, B sliver ≤ 32 KB: L1/L2)
    private const int MC = 96;     // rows of A packed at once (96×256×4 = 96 KB, L2)
    private const int NC = 2048;   // columns of B packed at once (≤ 2 MB)
    private const long ParallelMinFlops = 1L << 18;

    [ThreadStatic] private static float[]? _packA, _packB;

    /// <summary>C (m,n; row stride ldc) (+)= A (m,k; strides rsA,csA) @ B (k,n; strides rsB,csB).</summary>
    public static void Multiply(int m, int n, int k, float* a, int rsA, int csA, float* b, int rsB, int csB,
        float* c, int ldc, bool accumulate, WorkerPool? pool = null, SimdPath? path = null)
    {
        if (m <= 0 || n <= 0) return;
        if (k <= 0)
        {
            if (!accumulate) for (int i = 0; i < m; i++) new Span<float>(c + (long)i * ldc, n).Clear();
            return;
        }
        pool ??= WorkerPool.Shared;
        var p = path ?? Simd.Best;
        int parts = (long)m * n * k < ParallelMinFlops ? 1 : pool.AvailableThreads;
        if (parts == 1) Serial(p, m, n, k, a, rsA, csA, b, rsB, csB, c, ldc, accumulate);
        else InBands(pool, parts, p, m, n, k, a, rsA, csA, b, rsB, csB, c, ldc, accumulate);
    }

    /// <summary>Splits the larger of m and n into bands aligned to the tile size, one per part (kept apart so the serial path allocates no closure).</summary>
    private static void InBands(WorkerPool pool, int parts, SimdPath p, int m, int n, int k, float* a, int rsA, int csA, float* b, int rsB, int csB, float* c, int ldc, bool accumulate)
    {
        bool byColumns = n >= m;
        int extent = byColumns ? n : m, align = byColumns ? 32 : MR;
        int band = (extent + parts - 1) / parts;
        band = (band + align - 1) / align * align;
        parts = (extent + band - 1) / band;
        nint pa = (nint)a, pb = (nint)b, pc = (nint)c;
        pool.Run(parts, part =>
        {
            int start = part * band, len = Math.Min(band, extent - start);
            float* a0 = (float*)pa, b0 = (float*)pb, c0 = (float*)pc;
            if (byColumns) Serial(p, m, len, k, a0, rsA, csA, b0 + (long)start * csB, rsB, csB, c0 + start, ldc, accumulate);
            else Serial(p, len, n, k, a0 + (long)start * rsA, rsA, csA, b0, rsB, csB, c0 + (long)start * ldc, ldc, accumulate);
        });
    }

    private static void Serial(SimdPath path, int m, int n, int k, float* a, int rsA, int csA, float* b, int rsB, int csB, float* c, int ldc, bool accumulate)
    {
        switch (path)
        {
            case SimdPath.Vector512 when Vector512.IsHardwareAccelerated: Blocked<Ops512, Vector512<float>>(m, n, k, a, rsA, csA, b, rsB, csB, c, ldc, accumulate); break;
            case SimdPath.Vector256 when Vector256.IsHardwareAccelerated: Blocked<Ops256, Vector256<float>>(m, n, k, a, rsA, csA, b, rsB, csB, c, ldc, accumulate); break;
            case SimdPath.Vector128 when Vector128.IsHardwareAccelerated: Blocked<Ops128, Vector128<float>>(m, n, k, a, rsA, csA, b, rsB, csB, c, ldc, accumulate); break;
            default: Blocked<OpsScalar, OpsScalar.Quad>(m, n, k, a, rsA, csA, b, rsB, csB, c, ldc, accumulate); break;
        }
    }

    private static void Blocked<TOps, TV>(int m, int n, int k, float* a, int rsA, int csA, float* b, int rsB, int csB, float* c, int ldc, bool accumulate)
        where TOps : struct, IVectorOps<TV> where TV : struct
    {
        int nr = 2 * TOps.Lanes;
        int needA = MC * KC, needB = (Math.Min(n, NC) + nr - 1) / nr * nr * KC;
        if (_packA == null || _packA.Length < needA) _packA = GC.AllocateUninitializedArray<float>(needA, pinned: true);
        if (_packB == null || _packB.Length < needB) _packB = GC.AllocateUninitializedArray<float>(needB, pinned: true);
        float* tile = stackalloc float[MR * 32];
        // Equal K blocks (784 → 4 × 196, not 3 × 256 + 16): a short last block would pay a full pass over C for little work.
        int kBlocks = (k + KC - 1) / KC, kBlock = (k + kBlocks - 1) / kBlocks;
        fixed (float* packA = _packA, packB = _packB)
        {
            for (int jc = 0; jc < n; jc += NC)
            {
                int nc = Math.Min(NC, n - jc);
                for (int pc = 0; pc < k; pc += kBlock)
                {
                    int kc = Math.Min(kBlock, k - pc);
                    bool add = accumulate || pc > 0;
                    PackB(kc, nc, nr, b + (long)pc * rsB + (long)jc * csB, rsB, csB, packB);
                    for (int ic = 0; ic < m; ic += MC)
                    {
                        int mc = Math.Min(MC, m - ic);
                        PackA(mc, kc, a + (long)ic * rsA + (long)pc * csA, rsA, csA, packA);
                        for (int jr = 0; jr < nc; jr += nr)
                        {
                            int nrr = Math.Min(nr, nc - jr);
                            for (int ir = 0; ir < mc; ir += MR)
                            {
                                int mrr = Math.Min(MR, mc - ir);
                                float* cij = c + (long)(ic + ir) * ldc + jc + jr;
                                float* ap = packA + ir * kc, bp = packB + jr * kc;
                                if (mrr == MR && nrr == nr) MicroKernel<TOps, TV>(kc, ap, bp, cij, ldc, add);
                                else
                                {
                                    // Edge tile: compute a full tile aside, then keep its valid corner.
                                    MicroKernel<TOps, TV>(kc, ap, bp, tile, nr, false);
                                    for (int i = 0; i < mrr; i++)
                                        for (int j = 0; j < nrr; j++)
                                            cij[(long)i * ldc + j] = add ? cij[(long)i * ldc + j] + tile[i * nr + j] : tile[i * nr + j];
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>A (mc,kc) → slivers of MR rows: sliver s holds A[s·MR + i, p] at [s·MR·kc + p·MR + i], zero-padded.</summary>
    private static void PackA(int mc, int kc, float* a, int rsA, int csA, float* dst)
    {
        for (int s = 0; s < mc; s += MR)
        {
            int rows = Math.Min(MR, mc - s);
            float* d = dst + s * kc;
            for (int p = 0; p < kc; p++, d += MR)
            {
                float* src = a + (long)s * rsA + (long)p * csA;
                int i = 0;
                for (; i < rows; i++) d[i] = src[(long)i * rsA];
                for (; i < MR; i++) d[i] = 0;
            }
        }
    }

    /// <summary>B (kc,nc) → slivers of nr columns: sliver s holds B[p, s·nr + j] at [s·nr·kc + p·nr + j], zero-padded.</summary>
    private static void PackB(int kc, int nc, int nr, float* b, int rsB, int csB, float* dst)
    {
        for (int s = 0; s < nc; s += nr)
        {
            int cols = Math.Min(nr, nc - s);
            float* d = dst + s * kc;
            for (int p = 0; p < kc; p++, d += nr)
            {
                float* src = b + (long)p * rsB + (long)s * csB;
                int j = 0;
                if (csB == 1 && cols == nr) { Buffer.MemoryCopy(src, d, nr * sizeof(float), nr * sizeof(float)); continue; }
                for (; j < cols; j++) d[j] = src[(long)j * csB];
                for (; j < nr; j++) d[j] = 0;
            }
        }
    }

    /// <summary>C tile (MR, 2·Lanes; row stride ldc) (+)= packed A sliver (kc, MR) ⊗ packed B sliver (kc, 2·Lanes).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MicroKernel<TOps, TV>(int kc, float* a, float* b, float* c, int ldc, bool add)
        where TOps : struct, IVectorOps<TV> where TV : struct
    {
        int w = TOps.Lanes;
        TV c00 = TOps.Zero, c01 = TOps.Zero, c10 = TOps.Zero, c11 = TOps.Zero, c20 = TOps.Zero, c21 = TOps.Zero;
        TV c30 = TOps.Zero, c31 = TOps.Zero, c40 = TOps.Zero, c41 = TOps.Zero, c50 = TOps.Zero, c51 = TOps.Zero;
        for (int p = 0; p < kc; p++, a += MR, b += 2 * w)
        {
            TV b0 = TOps.Load(b), b1 = TOps.Load(b + w);
            TV x = TOps.Broadcast(a[0]); c00 = TOps.MultiplyAdd(x, b0, c00); c01 = TOps.MultiplyAdd(x, b1, c01);
            x = TOps.Broadcast(a[1]); c10 = TOps.MultiplyAdd(x, b0, c10); c11 = TOps.MultiplyAdd(x, b1, c11);
            x = TOps.Broadcast(a[2]); c20 = TOps.MultiplyAdd(x, b0, c20); c21 = TOps.MultiplyAdd(x, b1, c21);
            x = TOps.Broadcast(a[3]); c30 = TOps.MultiplyAdd(x, b0, c30); c31 = TOps.MultiplyAdd(x, b1, c31);
            x = TOps.Broadcast(a[4]); c40 = TOps.MultiplyAdd(x, b0, c40); c41 = TOps.MultiplyAdd(x, b1, c41);
            x = TOps.Broadcast(a[5]); c50 = TOps.MultiplyAdd(x, b0, c50); c51 = TOps.MultiplyAdd(x, b1, c51);
        }
        StoreRow<TOps, TV>(c, w, add, c00, c01); c += ldc;
        StoreRow<TOps, TV>(c, w, add, c10, c11); c += ldc;
        StoreRow<TOps, TV>(c, w, add, c20, c21); c += ldc;
        StoreRow<TOps, TV>(c, w, add, c30, c31); c += ldc;
        StoreRow<TOps, TV>(c, w, add, c40, c41); c += ldc;
        StoreRow<TOps, TV>(c, w, add, c50, c51);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow<TOps, TV>(float* c, int w, bool add, TV v0, TV v1)
        where TOps : struct, IVectorOps<TV> where TV : struct
    {
        if (add) { v0 = TOps.Add(TOps.Load(c), v0); v1 = TOps.Add(TOps.Load(c + w), v1); }
        TOps.Store(c, v0);
        TOps.Store(c + w, v1);
    }
}
