using System.Runtime.InteropServices;
using Coldmind.Numerics;
using Coldmind.Quantization;

namespace Coldmind.Kernels;

/// <summary>
/// A weight matrix W (rows × columns) stored row by row in any ggml type with a dot kernel, exactly as a GGUF
/// tensor of dims [columns, rows] holds it, so it can live in a memory-mapped file without a copy.
/// Y = X Wᵀ for X of shape (tokens, columns): each token's row is packed once into the type's dot type
/// (Q8_0 or Q8_K: the int8 activations of the quantized kernels), then every (row, token) pair is one
/// <see cref="VecDot"/>. One token is a GEMV that streams W once; a batch is a GEMM that walks W in tiles of
/// <see cref="TileRows"/> rows kept in L1 while every token passes over them, so W is still read from memory
/// once. Rows are split evenly over the worker pool.
/// </summary>
public sealed unsafe class PackedMatrix
{
    /// <summary>Rows multiplied with every token before moving on (16 rows of 2 560 TQ2_0 values: 10.6 KB).</summary>
    public const int TileRows = 16;

    private readonly byte* _data;
    private readonly object? _owner; // keeps the memory behind _data alive: a pinned array or an open GgufFile
    private readonly TypeTraits _dotTraits;
    private readonly VecDot _dot;

    public TypeTraits Traits { get; }
    public int Rows { get; }
    public int Columns { get; }
    public long RowBytes { get; }
    public long ByteCount => RowBytes * Rows;

    private PackedMatrix(TypeTraits traits, int rows, int columns, byte* data, object? owner)
    {
        var cpu = CpuTypeTraits.Of(traits.Type);
        if (rows <= 0 || columns <= 0) throw new ColdmindException($"A matrix needs positive dimensions, got {rows}×{columns}.");
        Traits = traits;
        (_dotTraits, _dot) = (cpu.DotFormat, cpu.Dot);
        if (columns % traits.BlockSize != 0 || columns % _dotTraits.BlockSize != 0)
            throw new ColdmindException($"{traits.Name} rows are whole blocks of {Math.Max(traits.BlockSize, _dotTraits.BlockSize)} values; {columns} columns are not.");
        Rows = rows;
        Columns = columns;
        RowBytes = traits.ByteCount(columns);
        _data = data;
        _owner = owner;
    }

    /// <summary>Packs float weights (rows × columns, row-major) into <paramref name="type"/>.</summary>
    public static PackedMatrix Pack(ReadOnlySpan<float> weights, int rows, int columns, GgmlType type)
    {
        var traits = GgmlTypes.Traits(type);
        if (weights.Length != (long)rows * columns) throw new ColdmindException($"{weights.Length} weights do not fill a {rows}×{columns} matrix.");
        var bytes = GC.AllocateArray<byte>(checked((int)traits.ByteCount(weights.Length)), pinned: true);
        (traits.FromFloat ?? throw new ColdmindException($"{traits.Name} cannot be packed by Coldmind."))(weights, bytes);
        return new PackedMatrix(traits, rows, columns, (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(bytes, 0), bytes);
    }

    /// <summary>
    /// Rows already packed in memory that <paramref name="owner"/> keeps alive (a mapped file, a pinned array):
    /// used in place, valid while the owner is.
    /// </summary>
    public static PackedMatrix InPlace(TypeTraits traits, int rows, int columns, byte* data, object owner) =>
        new(traits, rows, columns, data, owner);

    /// <summary>An independent copy in its own memory.</summary>
    public PackedMatrix Clone()
    {
        var bytes = GC.AllocateArray<byte>(checked((int)ByteCount), pinned: true);
        new ReadOnlySpan<byte>(_data, bytes.Length).CopyTo(bytes);
        return new PackedMatrix(Traits, Rows, Columns, (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(bytes, 0), bytes);
    }

    /// <summary>The packed bytes of row <paramref name="row"/>.</summary>
    public ReadOnlySpan<byte> Row(int row) => new(_data + row * RowBytes, (int)RowBytes);

    /// <summary>y (rows) = W x (columns).</summary>
    public void Multiply(ReadOnlySpan<float> x, Span<float> y, WorkerPool? pool = null, SimdPath? path = null) => Multiply(x, 1, y, pool, path);

    /// <summary>Y (tokens × rows) = X (tokens × columns) Wᵀ.</summary>
    public void Multiply(ReadOnlySpan<float> x, int tokens, Span<float> y, WorkerPool? pool = null, SimdPath? path = null)
    {
        if (tokens <= 0 || x.Length != (long)tokens * Columns || y.Length != (long)tokens * Rows)
            throw new ColdmindException($"A {Rows}×{Columns} matrix times {tokens} token(s) needs x of {(long)tokens * Columns} and y of {(long)tokens * Rows}, got {x.Length} and {y.Length}.");
        pool ??= WorkerPool.Shared;
        var p = path ?? Simd.Best;
        int xBytes = checked((int)_dotTraits.ByteCount(Columns));
        var packed = Scratch(checked(tokens * xBytes));
        var quantize = _dotTraits.FromFloat!;
        var dot = _dot;
        fixed (float* px = x, py = y)
        {
            nint xPtr = (nint)px, yPtr = (nint)py, aPtr = (nint)Marshal.UnsafeAddrOfPinnedArrayElement(packed, 0);
            int columns = Columns, rows = Rows;
            int parts = Math.Min(pool.AvailableThreads, tokens);
            if (parts > 1)
                pool.Run(parts, part =>
                {
                    for (int t = part * tokens / parts; t < (part + 1) * tokens / parts; t++)
                        quantize(new ReadOnlySpan<float>((float*)xPtr + (long)t * columns, columns), new Span<byte>((byte*)aPtr + (long)t * xBytes, xBytes));
                });
            else
                for (int t = 0; t < tokens; t++)
                    quantize(x.Slice(t * columns, columns), packed.AsSpan(t * xBytes, xBytes));

            int tiles = (rows + TileRows - 1) / TileRows;
            parts = Math.Min(pool.AvailableThreads, tiles);
            pool.Run(parts, part =>
            {
                for (int tile = part * tiles / parts; tile < (part + 1) * tiles / parts; tile++)
                {
                    int r0 = tile * TileRows, r1 = Math.Min(rows, r0 + TileRows);
                    for (int t = 0; t < tokens; t++)
                    {
                        byte* a = (byte*)aPtr + (long)t * xBytes;
                        float* yt = (float*)yPtr + (long)t * rows;
                        for (int r = r0; r < r1; r++) yt[r] = dot(_data + r * RowBytes, a, columns, p);
                    }
                }
            });
        }
    }

    /// <summary>Y = X Wᵀ by dequantizing W and summing in double: what the packed kernels are measured against.</summary>
    public void MultiplyReference(ReadOnlySpan<float> x, int tokens, Span<float> y)
    {
        var w = new float[Columns];
        for (int r = 0; r < Rows; r++)
        {
            Traits.ToFloat!(Row(r), w);
            for (int t = 0; t < tokens; t++)
            {
                double sum = 0;
                for (int c = 0; c < Columns; c++) sum += (double)w[c] * x[t * Columns + c];
                y[t * Rows + r] = (float)sum;
            }
        }
    }

    [ThreadStatic] private static byte[]? _scratch;

    /// <summary>The calling thread's pinned buffer for packed activations, grown as needed.</summary>
    private static byte[] Scratch(int bytes)
    {
        if (_scratch == null || _scratch.Length < bytes) _scratch = GC.AllocateArray<byte>(Math.Max(bytes, 4096), pinned: true);
        return _scratch;
    }
}
