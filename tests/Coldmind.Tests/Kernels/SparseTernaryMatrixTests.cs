using Xunit;
using Coldmind.Kernels;
using Coldmind.Numerics;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Tests;

[Trait("Category", "Kernels")]
public class SparseTernaryMatrixTests
{
    private static sbyte[] Trits(int rows, int cols, double density, Rng rng) =>
        Enumerable.Range(0, rows * cols).Select(_ => (sbyte)(rng.NextDouble() < density ? rng.NextInt(2) * 2 - 1 : 0)).ToArray();

    private static void AssertEveryPathIsExact(sbyte[] trits, int rows, int cols, sbyte[] q)
    {
        var m = SparseTernaryMatrix.FromTrits(trits, rows, cols, 0.5f);
        Assert.Equal(trits.Count(t => t != 0), m.NonZeros); // only kept trits are stored
        foreach (var path in Simd.Available)
        {
            var y = new float[rows];
            m.Multiply(q, 0.1f, y, path);
            for (int r = 0; r < rows; r++)
            {
                int dot = 0;
                for (int c = 0; c < cols; c++) dot += trits[r * cols + c] * q[c];
                Assert.True(dot * (0.5f * 0.1f) == y[r], $"{path}, row {r} of {rows}×{cols}: {y[r]}, expected {dot * (0.5f * 0.1f)}");
            }
        }
    }

    // rows longer than a chunk, columns on and off the 127- and 32-column tables, more tables than fit on the stack
    [Theory]
    [InlineData(1, 1, 1.0)] [InlineData(3, 5, 0.5)] [InlineData(37, 300, 0.2)] [InlineData(130, 784, 0.125)] [InlineData(17, 1000, 0.03)]
    [InlineData(8, 129, 1.0)] [InlineData(5, 128, 0.9)] [InlineData(64, 64, 0.125)] [InlineData(4, 32512, 0.01)] [InlineData(2, 40000, 0.01)]
    public void Every_path_equals_the_integer_dot_product(int rows, int cols, double density)
    {
        var rng = new Rng((ulong)(rows * 7919 + cols));
        var q = Enumerable.Range(0, cols).Select(_ => (sbyte)(rng.NextInt(256) - 128)).ToArray();
        AssertEveryPathIsExact(Trits(rows, cols, density, rng), rows, cols, q);
    }

    [Fact]
    public void Extreme_activations_and_empty_rows_do_not_overflow()
    {
        int rows = 4, cols = 1000;
        var trits = new sbyte[rows * cols];
        for (int c = 0; c < cols; c++) { trits[c] = 1; trits[cols + c] = -1; trits[3 * cols + c] = (sbyte)(c % 2 == 0 ? 1 : -1); } // row 2 is empty
        foreach (sbyte v in new sbyte[] { 127, -127, sbyte.MinValue, 0 })
            AssertEveryPathIsExact(trits, rows, cols, Enumerable.Repeat(v, cols).ToArray());
        var m = SparseTernaryMatrix.FromTrits(trits, rows, cols, 1f);
        Assert.Throws<ColdmindException>(() => m.Multiply(new sbyte[cols - 1], 1f, new float[rows]));
    }

    [Fact]
    public void Int8_quantization_rounds_alike_on_every_path()
    {
        var rng = new Rng(11);
        var lengths = Enumerable.Range(0, 70).Append(784).Append(1000);
        foreach (int n in lengths)
        {
            var x = Tensor.Normal(rng, 3f, n).ToArray();
            if (n > 40) // values whose quotient by the step is a half, or just below one (0.49999997 rounds down)
            {
                x[0] = 127f;
                x[1] = 0.5f;
                x[2] = -2.5f;
                x[3] = MathF.BitDecrement(0.5f);
                x[4] = -MathF.BitDecrement(0.5f);
                x[5] = 126.5f;
            }
            var expected = new sbyte[n];
            float step = BitNetQuantizer.QuantizeInt8(x, expected, SimdPath.Scalar);
            foreach (var path in Simd.Available)
            {
                var q = new sbyte[n];
                Assert.Equal(step, BitNetQuantizer.QuantizeInt8(x, q, path));
                Assert.Equal(expected, q);
            }
            Assert.All(expected, v => Assert.InRange(v, -127, 127));
        }
    }
}
