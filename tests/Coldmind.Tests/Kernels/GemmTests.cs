using Xunit;
using Coldmind.Kernels;
using Coldmind.Numerics;
using Coldmind.Tensors;

namespace Coldmind.Tests;

/// <summary>The fast GEMM on every SIMD path this machine has, against the naive double-precision reference.</summary>
[Trait("Category", "Kernels")]
public unsafe class GemmTests
{
    public static TheoryData<int, int, int> Shapes => new()
    {
        { 1, 1, 1 }, { 7, 13, 5 }, { 1000, 3, 257 }, { 6, 32, 256 }, { 13, 33, 300 }, { 128, 300, 784 }, { 3, 1000, 2 }, { 97, 65, 513 }, { 1, 2100, 7 }, { 300, 784, 128 },
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Matches_reference_on_every_path_and_thread_count(int m, int n, int k)
    {
        var rng = new Rng((ulong)(m * 31 + n * 7 + k));
        var a = Tensor.Normal(rng, 1f, m, k).Storage;
        var b = Tensor.Normal(rng, 1f, k, n).Storage;
        var c0 = Tensor.Normal(rng, 1f, m, n).Storage;
        var expected = (float[])c0.Clone();
        fixed (float* pa = a, pb = b, pe = expected)
            GemmReference.Multiply(m, n, k, pa, k, 1, pb, n, 1, pe, n, accumulate: true);
        foreach (var path in Simd.Available)
            foreach (int threads in new[] { 1, 2, 3 })
            {
                using var pool = new WorkerPool(threads);
                var c = (float[])c0.Clone();
                fixed (float* pa = a, pb = b, pc = c)
                    Gemm.Multiply(m, n, k, pa, k, 1, pb, n, 1, pc, n, accumulate: true, pool, path);
                AssertClose(expected, c, k, $"{path}, {threads} threads");
            }
    }

    [Fact]
    public void Transposed_operands_are_read_through_their_strides()
    {
        int m = 37, n = 45, k = 70;
        var rng = new Rng(3);
        var at = Tensor.Normal(rng, 1f, k, m).Storage; // A stored transposed: A[i,p] = at[p*m + i]
        var bt = Tensor.Normal(rng, 1f, n, k).Storage; // B stored transposed: B[p,j] = bt[j*k + p]
        var expected = new float[m * n];
        var c = new float[m * n];
        fixed (float* pa = at, pb = bt, pe = expected, pc = c)
        {
            GemmReference.Multiply(m, n, k, pa, 1, m, pb, 1, k, pe, n, accumulate: false);
            Gemm.Multiply(m, n, k, pa, 1, m, pb, 1, k, pc, n, accumulate: false);
        }
        AssertClose(expected, c, k, "transposed");
    }

    [Fact]
    public void Same_result_bit_for_bit_for_any_thread_count()
    {
        int m = 130, n = 310, k = 600;
        var rng = new Rng(4);
        var a = Tensor.Normal(rng, 1f, m, k).Storage;
        var b = Tensor.Normal(rng, 1f, k, n).Storage;
        float[] Run(int threads)
        {
            using var pool = new WorkerPool(threads);
            var c = new float[m * n];
            fixed (float* pa = a, pb = b, pc = c) Gemm.Multiply(m, n, k, pa, k, 1, pb, n, 1, pc, n, false, pool);
            return c;
        }
        Assert.Equal(Run(1), Run(2));
        Assert.Equal(Run(1), Run(3));
    }

    private static void AssertClose(float[] expected, float[] actual, int k, string what)
    {
        // float32 accumulation of k products of N(0,1) values: error grows like √k·ε·|terms|.
        double tol = 1e-5 * Math.Sqrt(k) * 8 + 1e-5;
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * Math.Max(1, Math.Abs(expected[i])),
                $"{what}: element {i} is {actual[i]}, reference {expected[i]}");
    }
}
