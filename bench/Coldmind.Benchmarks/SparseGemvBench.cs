using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using Coldmind.Kernels;
using Coldmind.Numerics;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Benchmarks;

/// <summary>
/// Batch-1 products of a pruned layer at the Fashion-MNIST student's first-layer shape (128 × 784), as
/// the weights kept fall: the dense float32 layer, the same layer as CSR float32 (AVX2 gathers), and as a sparse
/// ternary layer (int8 quantization of x included; the best lookup kernel this CPU has, and its scalar reference).
/// Weights sit in cache, as in `coldmind shrink`'s latency column; the last column is the time the ternary layer
/// takes against the dense float one, beside the fraction of weights it kept. Run it with DOTNET_EnableAVX512=0
/// too, for what an AVX2 machine gets: the AVX2 lookup against AVX2 dense products.
/// </summary>
internal static class SparseGemvBench
{
    public static int Run()
    {
        const int rows = 128, cols = 784;
        var rng = new Rng(1);
        var x = Tensor.Normal(rng, 1f, cols).ToArray();
        var dense = Tensor.Normal(rng, 0.05f, rows * cols).ToArray();
        var y = new float[rows];
        var q = new sbyte[cols];
        using var pool = new WorkerPool(1);
        double Time(Action a) => Timing.MedianSeconds(() => { for (int i = 0; i < 1000; i++) a(); }) * 1e3; // µs per call
        double denseUs = Time(() => { for (int r = 0; r < rows; r++) y[r] = TensorPrimitives.Dot(dense.AsSpan(r * cols, cols), x); });
        Console.WriteLine($"SIMD path {Simd.Best}, ternary kernel {SparseTernaryMatrix.Kernel()}, 1 thread, {rows}×{cols}; dense float32: {denseUs:F2} µs");
        Console.WriteLine($"{"kept",6} {"CSR f32 µs",11} {"ternary µs",11} {"reference µs",13} {"ternary / dense",16}");
        foreach (double kept in new[] { 1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125 })
        {
            var trits = new sbyte[rows * cols];
            var pruned = new float[rows * cols];
            for (int i = 0; i < trits.Length; i++)
                if (rng.NextDouble() < kept) { trits[i] = (sbyte)(rng.NextInt(2) * 2 - 1); pruned[i] = dense[i]; }
            var csr = SparseMatrix.FromDense(pruned, rows, cols);
            var ternary = SparseTernaryMatrix.FromTrits(trits, rows, cols, 0.05f);
            double csrUs = Time(() => csr.Multiply(x, y, pool));
            double ternaryUs = Time(() => ternary.Multiply(q, BitNetQuantizer.QuantizeInt8(x, q), y));
            double referenceUs = Time(() => ternary.Multiply(q, BitNetQuantizer.QuantizeInt8(x, q, SimdPath.Scalar), y, SimdPath.Scalar));
            Console.WriteLine($"{kept,6:P1} {csrUs,11:F2} {ternaryUs,11:F2} {referenceUs,13:F2} {ternaryUs / denseUs,15:P1}");
        }
        return 0;
    }
}
