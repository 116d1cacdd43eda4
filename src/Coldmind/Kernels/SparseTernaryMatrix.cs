using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Coldmind.Kernels;

/// <summary>
/// A pruned ternary matrix W = scale · T (T in {−1, 0, 1}, mostly 0) that stores only the column indices of
/// its nonzero trits, row by row, the +1 columns first and then the −1 columns: 2 bytes a kept weight (u16),
/// nothing for a pruned one. y = W x with int8 activations x ≈ s_x · q is scale · s_x · (Σ q[+] − Σ q[−]):
/// no multiplication at all until the one per row at the end. The AVX2 path gathers eight activations at a time.
/// </summary>
public sealed class SparseTernaryMatrix
{
    public int Rows { get; }
    public int Columns { get; }
    public float Scale { get; }
    /// <summary>Row r's +1 columns are Index[RowStart[r] .. NegativeStart[r]), its −1 columns Index[NegativeStart[r] .. RowStart[r + 1]).</summary>
    public int[] RowStart { get; }
    public int[] NegativeStart { get; }
    public ushort[] Index { get; }

    public int NonZeros => Index.Length;
    public long ByteCount => 2L * NonZeros + 8L * Rows + 4;

    public SparseTernaryMatrix(int rows, int columns, float scale, int[] rowStart, int[] negativeStart, ushort[] index)
    {
        if (rows <= 0 || columns <= 0 || columns > ushort.MaxValue + 1) throw new ColdmindException($"A sparse ternary matrix of {rows}×{columns} is not possible (columns index in 16 bits).");
        if (rowStart.Length != rows + 1 || negativeStart.Length != rows || rowStart[0] != 0 || rowStart[rows] != index.Length)
            throw new ColdmindException("Sparse ternary row offsets do not match the index count.");
        for (int r = 0; r < rows; r++)
            if (rowStart[r] > negativeStart[r] || negativeStart[r] > rowStart[r + 1]) throw new ColdmindException($"Sparse ternary row {r} has offsets out of order.");
        foreach (ushort c in index) if (c >= columns) throw new ColdmindException($"Sparse ternary column {c} is outside {columns} columns.");
        (Rows, Columns, Scale, RowStart, NegativeStart, Index) = (rows, columns, scale, rowStart, negativeStart, index);
    }

    /// <summary>From trits (rows × columns, row-major, each −1, 0 or 1).</summary>
    public static SparseTernaryMatrix FromTrits(ReadOnlySpan<sbyte> trits, int rows, int columns, float scale)
    {
        if (trits.Length != (long)rows * columns) throw new ColdmindException($"{trits.Length} trits do not fill a {rows}×{columns} matrix.");
        var rowStart = new int[rows + 1];
        var negativeStart = new int[rows];
        var index = new List<ushort>();
        for (int r = 0; r < rows; r++)
        {
            rowStart[r] = index.Count;
            for (int c = 0; c < columns; c++) if (trits[r * columns + c] > 0) index.Add((ushort)c);
            negativeStart[r] = index.Count;
            for (int c = 0; c < columns; c++) if (trits[r * columns + c] < 0) index.Add((ushort)c);
        }
        rowStart[rows] = index.Count;
        return new SparseTernaryMatrix(rows, columns, scale, rowStart, negativeStart, index.ToArray());
    }

    /// <summary>y = W x for int8 activations (values q, scale s_x): y_r = Scale · s_x · (Σ q[+] − Σ q[−]).</summary>
    public void Multiply(ReadOnlySpan<int> q, float activationScale, Span<float> y, SimdPath? path = null)
    {
        if (q.Length != Columns || y.Length != Rows)
            throw new ColdmindException($"A {Rows}×{Columns} sparse ternary matrix needs x of {Columns} and y of {Rows}, got {q.Length} and {y.Length}.");
        bool gather = (path ?? Simd.Best) >= SimdPath.Vector256 && Avx2.IsSupported;
        float scale = Scale * activationScale;
        unsafe
        {
            fixed (int* px = q)
            fixed (ushort* pi = Index)
                for (int r = 0; r < Rows; r++)
                {
                    int pos = gather ? SumGather(pi + RowStart[r], NegativeStart[r] - RowStart[r], px) : SumReference(pi + RowStart[r], NegativeStart[r] - RowStart[r], px);
                    int neg = gather ? SumGather(pi + NegativeStart[r], RowStart[r + 1] - NegativeStart[r], px) : SumReference(pi + NegativeStart[r], RowStart[r + 1] - NegativeStart[r], px);
                    y[r] = (pos - neg) * scale;
                }
        }
    }

    private static unsafe int SumReference(ushort* index, int count, int* x)
    {
        int sum = 0;
        for (int k = 0; k < count; k++) sum += x[index[k]];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe int SumGather(ushort* index, int count, int* x)
    {
        var acc = Vector256<int>.Zero;
        int k = 0;
        for (; k + 8 <= count; k += 8) acc += Avx2.GatherVector256(x, Avx2.ConvertToVector256Int32(Vector128.Load(index + k)), 4);
        return Vector256.Sum(acc) + SumReference(index + k, count - k, x);
    }
}
