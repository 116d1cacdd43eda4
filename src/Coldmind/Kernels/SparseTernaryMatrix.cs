using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using System.Runtime.Intrinsics;
using Coldmind.Numerics;

namespace Coldmind.Kernels;

/// <summary>
/// A pruned ternary matrix W = scale · T (T in {−1, 0, 1}, mostly 0) that stores only the column indices of
/// its nonzero trits, row by row, the +1 columns first and then the −1 columns: 2 bytes a kept weight (u16),
/// nothing for a pruned one. y = W x with int8 activations x ≈ s_x · q is scale · s_x · (Σ q[+] − Σ q[−]):
/// no multiplication at all until the one per row at the end.
/// <para>
/// The fast paths look activations up instead of gathering them (gathers are slow: on Zen 4 a 12,700-trit
/// layer took 5 µs with AVX2 gathers, as long as the dense float layer it was pruned from). The activations are
/// cut into small tables, and the trits are laid out a second time (<see cref="Lookup"/>) in blocks of rows
/// (rows sorted by their count of trits, so a block's rows are alike and pad little): a chunk holds 8 trits of
/// each row of its block, all in one table, as the column within the table and a sign bit. A table lookup, an
/// xor and a vpsadbw, which sums each row's 8 bytes into its own lane, handle a chunk; a block takes as many
/// chunks per table as its longest row there needs. The work scales with the kept trits, not rows × columns.
/// </para>
/// <list type="bullet">
/// <item>AVX-512 VBMI: one vpermi2b reads 64 bytes out of a 128-byte table (127 columns and a zero that padding
/// looks up); chunks of 8 rows × 8 trits, the sign in the top bit.</item>
/// <item>AVX2: two vpshufb and a blend read 32 bytes out of a 32-column table; chunks of 4 rows × 8 trits, the
/// sign in bit 6, padding with the top bit set (vpshufb returns 0 for it).</item>
/// </list>
/// </summary>
public sealed class SparseTernaryMatrix
{
    /// <summary>Trits of a row in a chunk: vpsadbw sums 8 bytes into a lane.</summary>
    private const int Slots = 8;

    public int Rows { get; }
    public int Columns { get; }
    public float Scale { get; }
    /// <summary>Row r's +1 columns are Index[RowStart[r] .. NegativeStart[r]), its −1 columns Index[NegativeStart[r] .. RowStart[r + 1]).</summary>
    public int[] RowStart { get; }
    public int[] NegativeStart { get; }
    public ushort[] Index { get; }

    public int NonZeros => Index.Length;
    /// <summary>Bytes as stored (the column lists and offsets); the lookup layouts are built from them when first used.</summary>
    public long ByteCount => 2L * NonZeros + 8L * Rows + 4;

    /// <summary>The rows by their count of trits; block b holds rows _order[b·BlockRows ..].</summary>
    private readonly int[] _order;
    private Lookup? _vbmi, _avx2;
    private Lookup Vbmi => _vbmi ??= new Lookup(this, blockRows: 8, tableColumns: 127, negative: 0x80, padding: 127);
    private Lookup Avx2Layout => _avx2 ??= new Lookup(this, blockRows: 4, tableColumns: 32, negative: 0x40, padding: 0x80);

    public SparseTernaryMatrix(int rows, int columns, float scale, int[] rowStart, int[] negativeStart, ushort[] index)
    {
        if (rows <= 0 || columns <= 0 || columns > ushort.MaxValue + 1) throw new ColdmindException($"A sparse ternary matrix of {rows}×{columns} is not possible (columns index in 16 bits).");
        if (rowStart.Length != rows + 1 || negativeStart.Length != rows || rowStart[0] != 0 || rowStart[rows] != index.Length)
            throw new ColdmindException("Sparse ternary row offsets do not match the index count.");
        for (int r = 0; r < rows; r++)
            if (rowStart[r] > negativeStart[r] || negativeStart[r] > rowStart[r + 1]) throw new ColdmindException($"Sparse ternary row {r} has offsets out of order.");
        foreach (ushort c in index) if (c >= columns) throw new ColdmindException($"Sparse ternary column {c} is outside {columns} columns.");
        (Rows, Columns, Scale, RowStart, NegativeStart, Index) = (rows, columns, scale, rowStart, negativeStart, index);
        _order = Enumerable.Range(0, rows).OrderBy(r => rowStart[r + 1] - rowStart[r]).ToArray();
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

    /// <summary>
    /// The trits laid out for one lookup kernel. Block b's chunks in table t are ChunkStart[b·Tables + t] ..
    /// ChunkStart[b·Tables + t + 1]; byte 8g + i of a chunk is the i-th trit there of the block's row g (row
    /// _order[BlockRows·b + g] of the matrix): its column % TableColumns, with the <c>negative</c> bit if −1,
    /// or <c>padding</c>, which looks up a zero.
    /// </summary>
    private sealed class Lookup
    {
        public readonly int BlockRows, TableColumns, Tables, Blocks;
        public readonly int[] ChunkStart;
        public readonly byte[] Chunks;
        public int ChunkBytes => BlockRows * Slots;

        public Lookup(SparseTernaryMatrix m, int blockRows, int tableColumns, byte negative, byte padding)
        {
            (BlockRows, TableColumns) = (blockRows, tableColumns);
            (Tables, Blocks) = ((m.Columns + tableColumns - 1) / tableColumns, (m.Rows + blockRows - 1) / blockRows);
            ChunkStart = new int[Blocks * Tables + 1];
            var chunks = new List<byte>();
            var rows = new (int Table, byte Entry)[blockRows][];
            var at = new int[blockRows];
            var end = new int[blockRows];
            for (int b = 0; b < Blocks; b++)
            {
                for (int g = 0; g < blockRows; g++)
                {
                    int r = b * blockRows + g < m.Rows ? m._order[b * blockRows + g] : -1;
                    rows[g] = r < 0 ? [] : Enumerable.Range(m.RowStart[r], m.RowStart[r + 1] - m.RowStart[r])
                        .Select(k => (m.Index[k] / tableColumns, (byte)(m.Index[k] % tableColumns | (k >= m.NegativeStart[r] ? negative : 0))))
                        .OrderBy(e => e.Item1).ToArray();
                    at[g] = 0;
                }
                for (int t = 0; t < Tables; t++)
                {
                    ChunkStart[b * Tables + t] = chunks.Count / ChunkBytes;
                    int count = 0;
                    for (int g = 0; g < blockRows; g++)
                    {
                        for (end[g] = at[g]; end[g] < rows[g].Length && rows[g][end[g]].Table == t; end[g]++) { }
                        count = Math.Max(count, (end[g] - at[g] + Slots - 1) / Slots);
                    }
                    for (int c = 0; c < count; c++)
                        for (int g = 0; g < blockRows; g++)
                            for (int i = at[g] + c * Slots; i < at[g] + (c + 1) * Slots; i++) chunks.Add(i < end[g] ? rows[g][i].Entry : padding);
                    end.CopyTo(at, 0);
                }
            }
            ChunkStart[^1] = chunks.Count / ChunkBytes;
            Chunks = chunks.ToArray();
        }

        /// <summary>Chunks of block b, in all tables.</summary>
        public int BlockChunks(int b) => ChunkStart[(b + 1) * Tables] - ChunkStart[b * Tables];
    }

    /// <summary>y = W x for int8 activations x ≈ s_x · q (<see cref="Quantization.BitNetQuantizer.QuantizeInt8"/>): y_r = Scale · s_x · (Σ q[+] − Σ q[−]).</summary>
    public void Multiply(ReadOnlySpan<sbyte> q, float activationScale, Span<float> y, SimdPath? path = null)
    {
        if (q.Length != Columns || y.Length != Rows)
            throw new ColdmindException($"A {Rows}×{Columns} sparse ternary matrix needs x of {Columns} and y of {Rows}, got {q.Length} and {y.Length}.");
        float scale = Scale * activationScale;
        var kernel = Choose(path);
        if (kernel == LookupKernel.Vbmi)
        {
            var lookup = Vbmi;
            int tableBytes = lookup.TableColumns + 1;
            Span<sbyte> tables = lookup.Tables <= 64 ? stackalloc sbyte[lookup.Tables * tableBytes] : new sbyte[lookup.Tables * tableBytes];
            tables.Clear();
            for (int t = 0; t < lookup.Tables; t++)
                q[(t * lookup.TableColumns)..Math.Min(q.Length, (t + 1) * lookup.TableColumns)].CopyTo(tables[(t * tableBytes)..]);
            MultiplyVbmi(lookup, tables, scale, y);
        }
        else if (kernel == LookupKernel.Avx2)
        {
            var lookup = Avx2Layout;
            int bytes = lookup.Tables * lookup.TableColumns; // the tables are q itself, zero-padded to whole tables
            Span<sbyte> tables = bytes <= 8192 ? stackalloc sbyte[bytes] : new sbyte[bytes];
            q.CopyTo(tables);
            tables[q.Length..].Clear();
            MultiplyAvx2(lookup, tables, scale, y);
        }
        else
            for (int r = 0; r < Rows; r++)
                y[r] = (Sum(q, RowStart[r], NegativeStart[r]) - Sum(q, NegativeStart[r], RowStart[r + 1])) * scale;
    }

    private enum LookupKernel { Vbmi, Avx2, Reference }

    private static LookupKernel Choose(SimdPath? path) => (path ?? Simd.Best) switch
    {
        >= SimdPath.Vector512 when Avx512Vbmi.IsSupported => LookupKernel.Vbmi,
        >= SimdPath.Vector256 when Avx2.IsSupported => LookupKernel.Avx2,
        _ => LookupKernel.Reference,
    };

    /// <summary>The name of the kernel <see cref="Multiply"/> runs on <paramref name="path"/> (default: the best) on this CPU.</summary>
    public static string Kernel(SimdPath? path = null) => Choose(path) switch
    {
        LookupKernel.Vbmi => "AVX-512 VBMI",
        LookupKernel.Avx2 => "AVX2",
        _ => "scalar reference",
    };

    /// <summary>The reference: Σ q over the columns Index[from .. to).</summary>
    private int Sum(ReadOnlySpan<sbyte> q, int from, int to)
    {
        int sum = 0;
        for (int k = from; k < to; k++) sum += q[Index[k]];
        return sum;
    }

    // Both kernels: as unsigned bytes q ^ 0x80 is q + 128 and q ^ 0x7F is 127 − q, so vpsadbw, summing each row's
    // 8 bytes of a chunk into its lane, adds Σ q[+] − Σ q[−] plus 128 a slot less 1 a −1 trit; Finish takes that off.

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private unsafe void MultiplyVbmi(Lookup lookup, ReadOnlySpan<sbyte> tables, float scale, Span<float> y)
    {
        var bias = Vector512.Create((byte)0x80);
        Span<long> sums = stackalloc long[8];
        fixed (sbyte* pq = tables)
        fixed (byte* pChunks = lookup.Chunks)
        fixed (int* pStart = lookup.ChunkStart)
        {
            int tableCount = lookup.Tables;
            for (int b = 0; b < lookup.Blocks; b++)
            {
                var acc = Vector512<ulong>.Zero;
                for (int t = 0; t < tableCount; t++)
                {
                    byte* table = (byte*)pq + t * 128;
                    Vector512<byte> low = Vector512.Load(table), high = Vector512.Load(table + 64);
                    int to = pStart[b * tableCount + t + 1];
                    for (int c = pStart[b * tableCount + t]; c < to; c++)
                    {
                        var index = Vector512.Load(pChunks + c * 64);
                        var values = Avx512Vbmi.PermuteVar64x8x2(low, index, high); // the low 7 bits of each index pick a byte
                        var negative = Vector512.LessThan(index.AsSByte(), Vector512<sbyte>.Zero).AsByte();
                        acc += Avx512BW.SumAbsoluteDifferences(values ^ bias ^ negative, Vector512<byte>.Zero).AsUInt64();
                    }
                }
                acc.AsInt64().CopyTo(sums);
                Finish(lookup, b, sums, scale, y);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private unsafe void MultiplyAvx2(Lookup lookup, ReadOnlySpan<sbyte> tables, float scale, Span<float> y)
    {
        var bias = Vector256.Create((byte)0x80);
        var signed = Vector256.Create((sbyte)63); // an entry above 63 has the sign bit 0x40 (padding, 0x80, is below as sbyte)
        Span<long> sums = stackalloc long[4];
        fixed (sbyte* pq = tables)
        fixed (byte* pChunks = lookup.Chunks)
        fixed (int* pStart = lookup.ChunkStart)
        {
            int tableCount = lookup.Tables;
            for (int b = 0; b < lookup.Blocks; b++)
            {
                var acc = Vector256<ulong>.Zero;
                for (int t = 0; t < tableCount; t++)
                {
                    byte* table = (byte*)pq + t * 32;
                    // vpshufb looks up within each 16-byte lane, so each half of the table goes to both lanes
                    var low = Vector256.Create(Vector128.Load(table));
                    var high = Vector256.Create(Vector128.Load(table + 16));
                    int to = pStart[b * tableCount + t + 1];
                    for (int c = pStart[b * tableCount + t]; c < to; c++)
                    {
                        var index = Vector256.Load(pChunks + c * 32);
                        // the low 4 bits pick a byte, bit 4 the half (moved to the top bit, which vpblendvb reads)
                        var values = Avx2.BlendVariable(Avx2.Shuffle(low, index), Avx2.Shuffle(high, index), Avx2.ShiftLeftLogical(index.AsUInt16(), 3).AsByte());
                        var negative = Avx2.CompareGreaterThan(index.AsSByte(), signed).AsByte();
                        acc += Avx2.SumAbsoluteDifferences(values ^ bias ^ negative, Vector256<byte>.Zero).AsUInt64();
                    }
                }
                acc.AsInt64().CopyTo(sums);
                Finish(lookup, b, sums, scale, y);
            }
        }
    }

    /// <summary>Block b's row sums, less 128 a slot plus 1 a −1 trit, scaled into y.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Finish(Lookup lookup, int b, ReadOnlySpan<long> sums, float scale, Span<float> y)
    {
        long offset = 128L * Slots * lookup.BlockChunks(b);
        for (int g = 0; g < lookup.BlockRows && b * lookup.BlockRows + g < Rows; g++)
        {
            int r = _order[b * lookup.BlockRows + g];
            y[r] = (sums[g] - offset + RowStart[r + 1] - NegativeStart[r]) * scale;
        }
    }
}
