using Xunit;
using Coldmind.Kernels;
using Coldmind.Numerics;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Tests;

[Trait("Category", "Kernels")]
public class TernaryGemvTests
{
    private static sbyte[] RandomTrits(Rng rng, int n) => Enumerable.Range(0, n).Select(_ => (sbyte)(rng.NextInt(3) - 1)).ToArray();

    [Theory]
    [InlineData(1, 1)] [InlineData(3, 7)] [InlineData(4, 256)] [InlineData(5, 300)] [InlineData(17, 513)] [InlineData(64, 1024)] [InlineData(131, 2560)] [InlineData(6, 5120)] [InlineData(4, 4097)]
    public void Every_path_and_thread_count_equals_the_reference_exactly(int rows, int cols)
    {
        var rng = new Rng((ulong)(rows * 1000 + cols));
        using var w = TernaryMatrix.FromTrits(RandomTrits(rng, rows * cols), rows, cols, 0.37f);
        var x = new TernaryGemv.Activations(Tensor.Normal(rng, 1f, cols).ToArray(), w.Chunks);
        var expected = new float[rows];
        TernaryGemv.MultiplyReference(w, x, expected);
        foreach (var kernel in Enum.GetValues<TernaryKernel>())
            foreach (var path in Simd.Available)
                foreach (int threads in new[] { 1, 2, 3 })
                {
                    using var pool = new WorkerPool(threads);
                    var y = new float[rows];
                    TernaryGemv.Multiply(w, x, y, pool, path, kernel);
                    Assert.True(expected.AsSpan().SequenceEqual(y), $"{kernel}, {path}, {threads} threads: {string.Join(", ", y.Take(4))} vs {string.Join(", ", expected.Take(4))}");
                }
    }

    [Theory]
    [InlineData(127f)] [InlineData(-127f)]
    public void Extreme_values_do_not_overflow_the_16_bit_partial_sums(float value)
    {
        int rows = 4, cols = 256 * 70; // 70 chunks: past the 16- and 64-chunk spans between widenings
        using var w = TernaryMatrix.FromTrits(Enumerable.Repeat((sbyte)1, rows * cols).ToArray(), rows, cols, 1f);
        var x = new TernaryGemv.Activations(Enumerable.Repeat(value, cols).ToArray(), w.Chunks);
        foreach (var kernel in Enum.GetValues<TernaryKernel>())
            foreach (var path in Simd.Available)
            {
                var y = new float[rows];
                TernaryGemv.Multiply(w, x, y, path: path, kernel: kernel);
                Assert.All(y, v => Assert.Equal(cols * 127f * Math.Sign(value) * x.Scale, v));
            }
    }

    [Theory]
    [InlineData(4, 256, 4)] [InlineData(9, 513, 7)] [InlineData(130, 2560, 9)] [InlineData(5, 256 * 40, 5)]
    public void Gemm_equals_a_gemv_per_token_on_every_path(int rows, int cols, int tokens)
    {
        var rng = new Rng((ulong)(rows + cols + tokens));
        using var w = TernaryMatrix.FromTrits(RandomTrits(rng, rows * cols), rows, cols, 0.5f);
        var x = Enumerable.Range(0, tokens).Select(_ => new TernaryGemv.Activations(Tensor.Normal(rng, 3f, cols).ToArray(), w.Chunks)).ToArray();
        var expected = new float[tokens * rows];
        for (int t = 0; t < tokens; t++) TernaryGemv.MultiplyReference(w, x[t], expected.AsSpan(t * rows, rows));
        foreach (var path in Simd.Available)
            foreach (int threads in new[] { 1, 2 })
            {
                using var pool = new WorkerPool(threads);
                var y = new float[tokens * rows];
                TernaryGemv.Multiply(w, x, y, pool, path);
                Assert.True(expected.AsSpan().SequenceEqual(y), $"{path}, {threads} threads");
            }
    }

    [Theory]
    [InlineData(GgmlType.TQ2_0)] [InlineData(GgmlType.TQ1_0)]
    public unsafe void Ggml_ternary_rows_repack_into_the_fast_layout_when_blocks_share_a_scale(GgmlType type)
    {
        var rng = new Rng(8);
        int rows = 7, cols = 768;
        var trits = RandomTrits(rng, rows * cols);
        for (int i = 256; i < 512; i++) trits[3 * cols + i] = 0; // one all-zero block: scale 0, still repackable
        var traits = GgmlTypes.Traits(type);
        var packed = traits.Quantize(trits.Select(t => 0.25f * t).ToArray());
        fixed (byte* p = packed)
        {
            using var m = TernaryMatrix.Repack(type, p, rows, cols);
            Assert.NotNull(m);
            Assert.Equal(0.25f, m!.Scale);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) Assert.Equal(trits[r * cols + c], m.Trit(r, c));
        }
        var uneven = trits.Select((t, i) => (i < cols ? 0.5f : 0.25f) * t).ToArray(); // first row's blocks scaled differently
        var unevenPacked = traits.Quantize(uneven);
        fixed (byte* p = unevenPacked) Assert.Null(TernaryMatrix.Repack(type, p, rows, cols));
    }

    [Fact]
    public void Packing_round_trips_every_trit()
    {
        var rng = new Rng(5);
        int rows = 9, cols = 700;
        var trits = RandomTrits(rng, rows * cols);
        using var w = TernaryMatrix.FromTrits(trits, rows, cols, 1f);
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) Assert.Equal(trits[r * cols + c], w.Trit(r, c));
        Assert.Equal(12L * 3 * 64, w.PackedBytes); // 3 row groups × 3 chunks × 4 rows × 64 bytes: 2 bits per (padded) weight
    }

    [Fact]
    public void Float_weights_are_ternarized_by_absmean_and_the_product_approximates_the_float_one()
    {
        var rng = new Rng(8);
        int rows = 64, cols = 512;
        var wf = Tensor.Normal(rng, 1f, rows * cols).ToArray();
        var x = Tensor.Normal(rng, 1f, cols).ToArray();
        using var w = TernaryMatrix.Quantize(wf, rows, cols);
        Assert.Equal(wf.Average(MathF.Abs), w.Scale, 4);
        var y = new float[rows];
        TernaryGemv.Multiply(w, x, y);
        // Against the dense product of the same dequantized weights and float x: only int8 rounding of x differs.
        for (int r = 0; r < rows; r++)
        {
            double exact = 0;
            for (int c = 0; c < cols; c++) exact += w.Trit(r, c) * w.Scale * (double)x[c];
            Assert.True(Math.Abs(exact - y[r]) <= 0.02 * Math.Sqrt(cols) * w.Scale, $"row {r}: {y[r]} vs {exact}");
        }
    }

    [Fact]
    public void Bad_shapes_are_clear_errors()
    {
        using var w = TernaryMatrix.FromTrits(new sbyte[6], 2, 3, 1f);
        Assert.Contains("needs x of 3 and y of 2", Assert.Throws<ColdmindException>(() => TernaryGemv.Multiply(w, new float[4], new float[2])).Message);
        Assert.Contains("not −1, 0 or 1", Assert.Throws<ColdmindException>(() => TernaryMatrix.FromTrits([2, 0], 1, 2, 1f)).Message);
    }
}
