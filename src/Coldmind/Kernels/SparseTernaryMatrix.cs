using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Coldmind.Kernels;

/// <summary>
/// A pruned ternary matrix W = scale · T (T in {−1, 0, 1}, mostly 0) that stores only the column indices of
/// its nonzero trits, row by row, the +1 columns first and then the −1 columns: 2 bytes a kept weight (u16),
/// nothing for a pruned one. y = W x with int8 activations x ≈ s_x · q is scale · s_x · (Σ q[+] − Σ q[−]):
/// no multiplication at all until the one per row at the end.
/// <para>
/// The fast path looks activations up instead of gathering them (gathers are slow: on Zen 4 a 12,700-trit
/// layer took 5 µs with AVX2 gathers, as long as the dense float layer it was pruned from). With AVX-512 VBMI
/// one vpermi2b reads 64 int8 activations out of a 128-byte table at 64 byte indices at once. The activations
/// are cut into tables of 127 columns (byte 127 is a zero that padding looks up), and the trits are laid out
/// a second time for it, in blocks of 8 rows (rows sorted by their count of trits, so a block's rows are alike
/// and pad little): a 64-byte chunk holds 8 trits of each of the 8 rows, all in one
/// table, as the column within the table with the sign in the top bit. One permute, an xor and a
/// vpsadbw, which sums each row's 8 bytes into its own lane, handle 64 trits; a block takes as many chunks
/// per table as its longest row there needs. The work scales with the kept trits, not with rows × columns.
/// </para>
/// </summary>
public sealed class SparseTernaryMatrix
{
    private const int Chunk = 64, BlockRows = 8, TableColumns = 127, TableBytes = 128;
    /// <summary>A padding entry's index: byte 127 of every table, always zero.</summary>
    private const byte Padding = TableColumns;

    public int Rows { get; }
    public int Columns { get; }
    public float Scale { get; }
    /// <summary>Row r's +1 columns are Index[RowStart[r] .. NegativeStart[r]), its −1 columns Index[NegativeStart[r] .. RowStart[r + 1]).</summary>
    public int[] RowStart { get; }
    public int[] NegativeStart { get; }
    public ushort[] Index { get; }

    public int NonZeros => Index.Length;
    /// <summary>Bytes as stored (the column lists and offsets); the lookup layout is built from them on load.</summary>
    public long ByteCount => 2L * NonZeros + 8L * Rows + 4;

    // The lookup layout: block b's chunks in table t are _chunkStart[b·tables + t] .. _chunkStart[b·tables + t + 1];
    // byte 8g + i of a chunk is the i-th trit there of the block's row g, row _order[8b + g] of the matrix:
    // (column % 127) | 0x80 if negative.
    private readonly int _tables, _blocks;
    private readonly int[] _chunkStart, _order;
    private readonly byte[] _chunks;

    public SparseTernaryMatrix(int rows, int columns, float scale, int[] rowStart, int[] negativeStart, ushort[] index)
    {
        if (rows <= 0 || columns <= 0 || columns > ushort.MaxValue + 1) throw new ColdmindException($"A sparse ternary matrix of {rows}×{columns} is not possible (columns index in 16 bits).");
        if (rowStart.Length != rows + 1 || negativeStart.Length != rows || rowStart[0] != 0 || rowStart[rows] != index.Length)
            throw new ColdmindException("Sparse ternary row offsets do not match the index count.");
        for (int r = 0; r < rows; r++)
            if (rowStart[r] > negativeStart[r] || negativeStart[r] > rowStart[r + 1]) throw new ColdmindException($"Sparse ternary row {r} has offsets out of order.");
        foreach (ushort c in index) if (c >= columns) throw new ColdmindException($"Sparse ternary column {c} is outside {columns} columns.");
        (Rows, Columns, Scale, RowStart, NegativeStart, Index) = (rows, columns, scale, rowStart, negativeStart, index);
        (_tables, _blocks) = ((columns + TableColumns - 1) / TableColumns, (rows + BlockRows - 1) / BlockRows);
        _order = Enumerable.Range(0, rows).OrderBy(r => rowStart[r + 1] - rowStart[r]).ToArray();
        (_chunkStart, _chunks) = BuildLookup();
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

    private (int[], byte[]) BuildLookup()
    {
        var chunkStart = new int[_blocks * _tables + 1];
        var chunks = new List<byte>();
        var rows = new (int Table, byte Entry)[BlockRows][];
        var at = new int[BlockRows];
        var end = new int[BlockRows];
        for (int b = 0; b < _blocks; b++)
        {
            for (int g = 0; g < BlockRows; g++)
            {
                int r = b * BlockRows + g < Rows ? _order[b * BlockRows + g] : -1;
                rows[g] = r < 0 ? [] : Enumerable.Range(RowStart[r], RowStart[r + 1] - RowStart[r])
                    .Select(k => (Index[k] / TableColumns, (byte)(Index[k] % TableColumns | (k >= NegativeStart[r] ? 0x80 : 0))))
                    .OrderBy(e => e.Item1).ToArray();
                at[g] = 0;
            }
            for (int t = 0; t < _tables; t++)
            {
                chunkStart[b * _tables + t] = chunks.Count / Chunk;
                int count = 0;
                for (int g = 0; g < BlockRows; g++)
                {
                    for (end[g] = at[g]; end[g] < rows[g].Length && rows[g][end[g]].Table == t; end[g]++) { }
                    count = Math.Max(count, (end[g] - at[g] + BlockRows - 1) / BlockRows);
                }
                for (int c = 0; c < count; c++)
                    for (int g = 0; g < BlockRows; g++)
                        for (int i = at[g] + c * 8; i < at[g] + c * 8 + 8; i++) chunks.Add(i < end[g] ? rows[g][i].Entry : Padding);
                end.CopyTo(at, 0);
            }
        }
        chunkStart[^1] = chunks.Count / Chunk;
        return (chunkStart, chunks.ToArray());
    }

    /// <summary>y = W x for int8 activations x ≈ s_x · q (<see cref="Quantization.BitNetQuantizer.QuantizeInt8"/>): y_r = Scale · s_x · (Σ q[+] − Σ q[−]).</summary>
    public void Multiply(ReadOnlySpan<sbyte> q, float activationScale, Span<float> y, SimdPath? path = null)
    {
        if (q.Length != Columns || y.Length != Rows)
            throw new ColdmindException($"A {Rows}×{Columns} sparse ternary matrix needs x of {Columns} and y of {Rows}, got {q.Length} and {y.Length}.");
        float scale = Scale * activationScale;
        if ((path ?? Simd.Best) >= SimdPath.Vector512 && Avx512Vbmi.IsSupported)
        {
            Span<sbyte> tables = _tables <= 64 ? stackalloc sbyte[_tables * TableBytes] : new sbyte[_tables * TableBytes];
            tables.Clear();
            for (int t = 0; t < _tables; t++) q[(t * TableColumns)..Math.Min(q.Length, (t + 1) * TableColumns)].CopyTo(tables[(t * TableBytes)..]);
            MultiplyLookup(tables, scale, y);
        }
        else
            for (int r = 0; r < Rows; r++)
                y[r] = (Sum(q, RowStart[r], NegativeStart[r]) - Sum(q, NegativeStart[r], RowStart[r + 1])) * scale;
    }

    /// <summary>The reference: Σ q over the columns Index[from .. to).</summary>
    private int Sum(ReadOnlySpan<sbyte> q, int from, int to)
    {
        int sum = 0;
        for (int k = from; k < to; k++) sum += q[Index[k]];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private unsafe void MultiplyLookup(ReadOnlySpan<sbyte> tables, float scale, Span<float> y)
    {
        var bias = Vector512.Create((byte)0x80);
        Span<long> sums = stackalloc long[BlockRows];
        fixed (sbyte* pq = tables)
        fixed (byte* pChunks = _chunks)
        fixed (int* pStart = _chunkStart)
        {
            for (int b = 0; b < _blocks; b++)
            {
                var acc = Vector512<ulong>.Zero;
                for (int t = 0; t < _tables; t++)
                {
                    byte* table = (byte*)pq + t * TableBytes;
                    Vector512<byte> low = Vector512.Load(table), high = Vector512.Load(table + Chunk);
                    int to = pStart[b * _tables + t + 1];
                    for (int c = pStart[b * _tables + t]; c < to; c++)
                    {
                        var index = Vector512.Load(pChunks + c * Chunk);
                        var values = Avx512Vbmi.PermuteVar64x8x2(low, index, high); // the low 7 bits of each index pick a byte
                        // as unsigned bytes q ^ 0x80 is q + 128 and q ^ 0x7F is 127 − q, so vpsadbw, summing each row's
                        // 8 bytes into its lane, adds Σ q[+] − Σ q[−] plus 128 a slot less 1 a −1 trit, taken off below
                        var negative = Vector512.LessThan(index.AsSByte(), Vector512<sbyte>.Zero).AsByte();
                        acc += Avx512BW.SumAbsoluteDifferences(values ^ bias ^ negative, Vector512<byte>.Zero).AsUInt64();
                    }
                }
                long offset = 128L * BlockRows * (pStart[(b + 1) * _tables] - pStart[b * _tables]);
                (acc.AsInt64() - Vector512.Create(offset)).CopyTo(sums);
                for (int g = 0; g < BlockRows && b * BlockRows + g < Rows; g++)
                {
                    int r = _order[b * BlockRows + g];
                    y[r] = (sums[g] + RowStart[r + 1] - NegativeStart[r]) * scale;
                }
            }
        }
    }
}
