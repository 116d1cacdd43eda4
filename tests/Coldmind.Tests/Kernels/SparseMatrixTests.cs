using Xunit;
using Coldmind.Kernels;
using Coldmind.Numerics;
using Coldmind.Tensors;

namespace Coldmind.Tests;

[Trait("Category", "Kernels")]
public class SparseMatrixTests
{
    private static float[] Pruned(int rows, int cols, double sparsity, ulong seed)
    {
        var rng = new Rng(seed);
        var w = Tensor.Normal(rng, 1f, rows * cols).ToArray();
        for (int i = 0; i < w.Length; i++) if (rng.NextDouble() < sparsity) w[i] = 0;
        return w;
    }

    [Theory]
    [InlineData(1, 1, 0.0)] [InlineData(7, 13, 0.5)] [InlineData(33, 300, 0.9)] [InlineData(200, 2560, 0.95)] [InlineData(64, 1000, 1.0)] [InlineData(3, 65536, 0.99)]
    public void Every_path_and_thread_count_matches_the_dense_product(int rows, int cols, double sparsity)
    {
        var w = Pruned(rows, cols, sparsity, (ulong)(rows + cols));
        var x = Tensor.Normal(new Rng(9), 1f, cols).ToArray();
        var m = SparseMatrix.FromDense(w, rows, cols);
        Assert.Equal(w.Count(v => v != 0), m.NonZeros);
        var expected = new float[rows];
        for (int r = 0; r < rows; r++)
        {
            double sum = 0;
            for (int c = 0; c < cols; c++) sum += (double)w[r * cols + c] * x[c];
            expected[r] = (float)sum;
        }
        foreach (var path in Simd.Available)
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var pool = new WorkerPool(threads);
                var y = new float[rows];
                m.Multiply(x, y, pool, path);
                for (int r = 0; r < rows; r++)
                {
                    double scale = 0;
                    for (int c = 0; c < cols; c++) scale += Math.Abs(w[r * cols + c] * x[c]);
                    Assert.True(Math.Abs(y[r] - expected[r]) <= 1e-5 * scale + 1e-30, $"{path}, {threads} threads, row {r}: {y[r]} vs {expected[r]}");
                }
            }
    }

    [Fact]
    public void Pruning_shrinks_the_bytes_below_the_dense_matrix()
    {
        var m = SparseMatrix.FromDense(Pruned(256, 256, 0.9, 1), 256, 256);
        Assert.InRange(m.Sparsity, 0.88, 0.92);
        Assert.True(m.ByteCount < 256 * 256 * 4 / 5, $"{m.ByteCount} bytes");
    }

    [Fact]
    public void Too_many_columns_and_wrong_shapes_are_refused()
    {
        Assert.Throws<ColdmindException>(() => SparseMatrix.FromDense(new float[65537], 1, 65537));
        var m = SparseMatrix.FromDense(new float[12], 3, 4);
        Assert.Throws<ColdmindException>(() => m.Multiply(new float[3], new float[3]));
    }
}
