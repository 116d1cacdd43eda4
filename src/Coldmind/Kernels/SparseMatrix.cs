using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using System.Runtime.Intrinsics;
using Coldmind.Numerics;

namespace Coldmind.Kernels;

/// <summary>
/// A pruned weight matrix (rows × columns) that stores only its nonzero weights, row by row (CSR): f32
/// values with u16 column indices, 6 bytes a kept weight against 4 for every weight of the dense matrix, so
/// from 1/3 sparsity on it is smaller, and at 90 % sparsity it reads 6.7× fewer bytes. y = W x touches only
/// kept weights; the SIMD path gathers x at eight indices at a time. Rows are split over the worker pool in
/// ranges of equal nonzero counts, not equal row counts, because pruning leaves rows uneven.
/// </summary>
public sealed class SparseMatrix
{
    public int Rows { get; }
    public int Columns { get; }
    /// <summary>Row r's weights are Values[RowStart[r] .. RowStart[r + 1]) at columns ColumnIndex[same range].</summary>
    public int[] RowStart { get; }
    public ushort[] ColumnIndex { get; }
    public float[] Values { get; }

    public int NonZeros => Values.Length;
    public double Sparsity => 1 - (double)NonZeros / ((long)Rows * Columns);
    public long ByteCount => 6L * NonZeros + 4L * (Rows + 1);

    private SparseMatrix(int rows, int columns, int[] rowStart, ushort[] columnIndex, float[] values)
    {
        Rows = rows;
        Columns = columns;
        RowStart = rowStart;
        ColumnIndex = columnIndex;
        Values = values;
    }

    /// <summary>Keeps the nonzero entries of a dense row-major matrix.</summary>
    public static SparseMatrix FromDense(ReadOnlySpan<float> weights, int rows, int columns)
    {
        if (rows <= 0 || columns <= 0 || weights.Length != (long)rows * columns)
            throw new ColdmindException($"{weights.Length} weights do not fill a {rows}×{columns} matrix.");
        if (columns > ushort.MaxValue + 1) throw new ColdmindException($"Sparse rows index columns in 16 bits; {columns} columns are too many.");
        int nonZeros = 0;
        foreach (float w in weights) if (w != 0) nonZeros++;
        var rowStart = new int[rows + 1];
        var index = new ushort[nonZeros];
        var values = new float[nonZeros];
        int k = 0;
        for (int r = 0; r < rows; r++)
        {
            rowStart[r] = k;
            for (int c = 0; c < columns; c++)
                if (weights[r * columns + c] is float w && w != 0) { index[k] = (ushort)c; values[k++] = w; }
        }
        rowStart[rows] = k;
        return new SparseMatrix(rows, columns, rowStart, index, values);
    }

    /// <summary>From CSR arrays (as stored by PyTorch's sparse CSR layout), validated: offsets ascending, indices in range.</summary>
    public static SparseMatrix FromCsr(int rows, int columns, int[] rowStart, ushort[] columnIndex, float[] values)
    {
        if (rows <= 0 || columns <= 0 || columns > ushort.MaxValue + 1) throw new ColdmindException($"A sparse matrix of {rows}×{columns} is not possible (columns index in 16 bits).");
        if (rowStart.Length != rows + 1 || rowStart[0] != 0 || rowStart[rows] != values.Length || columnIndex.Length != values.Length)
            throw new ColdmindException("CSR row offsets, column indices and values do not match.");
        for (int r = 0; r < rows; r++) if (rowStart[r] > rowStart[r + 1]) throw new ColdmindException($"CSR row {r} has a negative length.");
        foreach (ushort c in columnIndex) if (c >= columns) throw new ColdmindException($"CSR column {c} is outside {columns} columns.");
        return new SparseMatrix(rows, columns, rowStart, columnIndex, values);
    }

    /// <summary>y (rows) = W x (columns).</summary>
    public void Multiply(ReadOnlySpan<float> x, Span<float> y, WorkerPool? pool = null, SimdPath? path = null)
    {
        if (x.Length != Columns || y.Length != Rows)
            throw new ColdmindException($"A {Rows}×{Columns} sparse matrix needs x of {Columns} and y of {Rows}, got {x.Length} and {y.Length}.");
        pool ??= WorkerPool.Shared;
        bool gather = (path ?? Simd.Best) >= SimdPath.Vector256 && Avx2.IsSupported;
        int parts = Math.Min(pool.AvailableThreads, Math.Max(1, NonZeros / 4096));
        var bounds = Balance(parts);
        unsafe
        {
            fixed (float* px = x, py = y, pv = Values)
            fixed (ushort* pi = ColumnIndex)
            fixed (int* ps = RowStart)
            {
                nint xp = (nint)px, yp = (nint)py, vp = (nint)pv, ip = (nint)pi, sp = (nint)ps;
                pool.Run(parts, part =>
                {
                    for (int r = bounds[part]; r < bounds[part + 1]; r++)
                    {
                        int start = ((int*)sp)[r], count = ((int*)sp)[r + 1] - start;
                        float* v = (float*)vp + start;
                        ushort* idx = (ushort*)ip + start;
                        ((float*)yp)[r] = gather ? RowGather(v, idx, count, (float*)xp) : RowReference(v, idx, count, (float*)xp);
                    }
                });
            }
        }
    }

    /// <summary>Row ranges of about equal nonzero counts, one per part.</summary>
    private int[] Balance(int parts)
    {
        var bounds = new int[parts + 1];
        int r = 0;
        for (int p = 1; p < parts; p++)
        {
            long target = (long)NonZeros * p / parts;
            while (r < Rows && RowStart[r] < target) r++;
            bounds[p] = r;
        }
        bounds[parts] = Rows;
        return bounds;
    }

    private static unsafe float RowReference(float* v, ushort* idx, int count, float* x)
    {
        float sum = 0;
        for (int k = 0; k < count; k++) sum += v[k] * x[idx[k]];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe float RowGather(float* v, ushort* idx, int count, float* x)
    {
        var acc = Vector256<float>.Zero;
        int k = 0;
        for (; k + 8 <= count; k += 8)
        {
            var columns = Avx2.ConvertToVector256Int32(Vector128.Load(idx + k));
            acc = Vector256.FusedMultiplyAdd(Vector256.Load(v + k), Avx2.GatherVector256(x, columns, 4), acc);
        }
        return Vector256.Sum(acc) + RowReference(v + k, idx + k, count - k, x);
    }
}
