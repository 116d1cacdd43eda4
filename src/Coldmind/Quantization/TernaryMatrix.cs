using System.Runtime.InteropServices;

namespace Coldmind.Quantization;

/// <summary>
/// A ternary weight matrix in Coldmind's "I2×4" layout (2 bits per weight plus one float scale), laid out
/// for matrix–vector products at memory speed: W = scale · T with T in {−1, 0, 1}, each trit stored as the
/// code q = t + 1 in {0, 1, 2}. Rows are taken four at a time; for each 256-column chunk the four rows'
/// 64-byte groups follow each other, so a worker reads one sequential stream and uses each loaded activation
/// chunk four times. In a group, bit pair l of byte i holds column 64·l + i of the chunk. Rows are padded
/// to a multiple of 4 and columns to a multiple of 256 with zero trits (code 1).
/// </summary>
public sealed unsafe class TernaryMatrix : IDisposable
{
    public const int ChunkColumns = 256, GroupBytes = 64, RowsPerGroup = 4;

    public int Rows { get; }
    public int Columns { get; }
    public int Chunks { get; }
    public float Scale { get; }
    /// <summary>The packed codes, 64-byte aligned (native memory, freed by <see cref="Dispose"/>).</summary>
    public byte* Packed { get; private set; }
    public long PackedBytes { get; }

    /// <summary>Row groups of four.</summary>
    public int Groups => (Rows + RowsPerGroup - 1) / RowsPerGroup;

    private TernaryMatrix(int rows, int columns, float scale)
    {
        if (rows <= 0 || columns <= 0) throw new ColdmindException($"A ternary matrix needs positive dimensions, got {rows}×{columns}.");
        Rows = rows;
        Columns = columns;
        Chunks = (columns + ChunkColumns - 1) / ChunkColumns;
        Scale = scale;
        PackedBytes = (long)Groups * Chunks * RowsPerGroup * GroupBytes;
        Packed = (byte*)NativeMemory.AlignedAlloc((nuint)PackedBytes, 64);
        NativeMemory.Fill(Packed, (nuint)PackedBytes, 0b01010101); // every code 1: trit 0
    }

    /// <summary>Packs trits (rows × columns, row-major, each −1, 0 or 1) with a scale.</summary>
    public static TernaryMatrix FromTrits(ReadOnlySpan<sbyte> trits, int rows, int columns, float scale)
    {
        if (trits.Length != (long)rows * columns) throw new ColdmindException($"{trits.Length} trits do not fill a {rows}×{columns} matrix.");
        var m = new TernaryMatrix(rows, columns, scale);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++)
            {
                int t = trits[r * columns + c];
                if (t is < -1 or > 1) throw new ColdmindException($"Trit {t} at ({r}, {c}) is not −1, 0 or 1.");
                byte* b = m.GroupStart(r, c / ChunkColumns) + c % ChunkColumns % GroupBytes;
                int shift = 2 * (c % ChunkColumns / GroupBytes);
                *b = (byte)((*b & ~(3 << shift)) | ((t + 1) << shift));
            }
        return m;
    }

    /// <summary>BitNet b1.58's absmean ternarization of float weights (rows × columns, row-major), as in training.</summary>
    public static TernaryMatrix Quantize(ReadOnlySpan<float> weights, int rows, int columns)
    {
        var trits = new sbyte[weights.Length];
        float scale = BitNetQuantizer.Ternarize(weights, trits);
        return FromTrits(trits, rows, columns, scale);
    }

    /// <summary>
    /// Repacks a TQ2_0 or TQ1_0 matrix (rows × columns, ggml rows) into this layout, the runtime's fast path for
    /// ternary GGUF weights. Possible when every block carries the same scale, as in BitNet models (a block of
    /// all zeros may have scale 0); returns null otherwise, and the caller keeps the ggml layout.
    /// </summary>
    public static TernaryMatrix? Repack(GgmlType type, byte* data, int rows, int columns, Numerics.WorkerPool? pool = null)
    {
        if (type is not (GgmlType.TQ2_0 or GgmlType.TQ1_0) || columns % ChunkColumns != 0) return null;
        var traits = GgmlTypes.Traits(type);
        int blocksPerRow = columns / ChunkColumns;
        long blocks = (long)rows * blocksPerRow;
        Half scale = default;
        for (long b = 0; b < blocks; b++)
        {
            // the scale is the block's last two bytes in both formats
            Half d = *(Half*)(data + (b + 1) * traits.BytesPerBlock - 2);
            if (d == Half.Zero) continue;
            if (scale == Half.Zero) scale = d;
            else if (d != scale) return null;
        }
        var m = new TernaryMatrix(rows, columns, (float)scale);
        pool ??= Numerics.WorkerPool.Shared;
        int parts = Math.Min(pool.AvailableThreads, rows);
        pool.Run(parts, part =>
        {
            byte* codes = stackalloc byte[ChunkColumns];
            sbyte* trits = stackalloc sbyte[ChunkColumns];
            for (int r = part * rows / parts; r < (part + 1) * rows / parts; r++)
                for (int c = 0; c < blocksPerRow; c++)
                {
                    byte* block = data + ((long)r * blocksPerRow + c) * traits.BytesPerBlock;
                    if (*(Half*)(block + traits.BytesPerBlock - 2) == Half.Zero) continue; // stays all code 1 (trit 0)
                    if (type == GgmlType.TQ2_0)
                        for (int j = 0; j < 64; j += 32)
                            for (int l = 0; l < 4; l++)
                                for (int i = 0; i < 32; i++) codes[4 * j + 32 * l + i] = (byte)((block[j + i] >> (2 * l)) & 3);
                    else
                    {
                        TQ1_0.Trits(*(TQ1_0.Block*)block, new Span<sbyte>(trits, ChunkColumns));
                        for (int i = 0; i < ChunkColumns; i++) codes[i] = (byte)(trits[i] + 1);
                    }
                    byte* group = m.GroupStart(r, c);
                    for (int i = 0; i < GroupBytes; i++)
                        group[i] = (byte)(codes[i] | codes[64 + i] << 2 | codes[128 + i] << 4 | codes[192 + i] << 6);
                }
        });
        return m;
    }

    /// <summary>An independent copy (its own packed buffer).</summary>
    public TernaryMatrix Clone()
    {
        var copy = new TernaryMatrix(Rows, Columns, Scale);
        Buffer.MemoryCopy(Packed, copy.Packed, PackedBytes, PackedBytes);
        return copy;
    }

    /// <summary>The 64-byte group of row <paramref name="row"/> in chunk <paramref name="chunk"/>.</summary>
    internal byte* GroupStart(int row, int chunk) =>
        Packed + (((long)(row / RowsPerGroup) * Chunks + chunk) * RowsPerGroup + row % RowsPerGroup) * GroupBytes;

    /// <summary>Trit at (row, column), for tests and the scalar reference.</summary>
    public int Trit(int row, int column)
    {
        byte b = GroupStart(row, column / ChunkColumns)[column % ChunkColumns % GroupBytes];
        return ((b >> (2 * (column % ChunkColumns / GroupBytes))) & 3) - 1;
    }

    public void Dispose()
    {
        Free();
        GC.SuppressFinalize(this);
    }

    /// <summary>Native memory is freed even when a caller forgets to dispose.</summary>
    ~TernaryMatrix() => Free();

    private void Free()
    {
        if (Packed != null) NativeMemory.AlignedFree(Packed);
        Packed = null;
    }
}
