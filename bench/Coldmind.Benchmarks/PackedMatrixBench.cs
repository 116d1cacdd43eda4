using Coldmind.Kernels;
using Coldmind.Numerics;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Benchmarks;

/// <summary>
/// GEMV and GEMM of matrices in ggml's own layouts (<see cref="PackedMatrix"/>) at the BitNet-b1.58-2B-4T
/// FFN shape 6912×2560: GEMV as GB/s of weights read and as a share of the read bandwidth measured in the
/// same run (over ≥ 512 MB of distinct matrices, so weights stream from memory); GEMM on a 128-token prompt
/// batch as tokens/s and integer/float GOP/s, where the weights are reused from cache and compute decides.
/// </summary>
internal static class PackedMatrixBench
{
    private const long StreamBytes = 512L << 20;
    private const int Rows = 6912, Cols = 2560, PromptTokens = 128;

    public static int Run()
    {
        var bandwidth = TernaryGemvBench.PrintBandwidth();
        Console.WriteLine($"{Rows}×{Cols}; GEMM on {PromptTokens} tokens.");
        Console.WriteLine($"{"type",-6} {"bits/w",6} {"threads",7} {"GEMV µs",9} {"GB/s",6} {"% bw",5} {"GEMM ms",9} {"tok/s",8} {"GOP/s",7}");
        var rng = new Rng(1);
        var weights = Tensor.Normal(rng, 0.02f, Rows * Cols).ToArray();
        var x = Tensor.Normal(rng, 1f, PromptTokens * Cols).ToArray();
        var y = new float[PromptTokens * Rows];
        foreach (var type in new[] { GgmlType.TQ1_0, GgmlType.TQ2_0, GgmlType.Q4_0, GgmlType.Q6_K, GgmlType.Q8_0, GgmlType.F16, GgmlType.F32 })
        {
            var first = PackedMatrix.Pack(weights, Rows, Cols, type);
            var copies = new List<PackedMatrix> { first };
            // distinct copies so each GEMV pass streams from memory; packing is slow, so copy the bytes
            while (copies.Count * first.ByteCount < StreamBytes) copies.Add(first.Clone());
            foreach (int t in new[] { 1, 2 })
            {
                using var pool = new WorkerPool(t);
                double gemv = Timing.MedianSeconds(() => { foreach (var m in copies) m.Multiply(x.AsSpan(0, Cols), y.AsSpan(0, Rows), pool); }) / copies.Count;
                double gemm = Timing.MedianSeconds(() => first.Multiply(x, PromptTokens, y, pool));
                double gb = first.ByteCount / gemv / 1e9;
                Console.WriteLine($"{first.Traits.Name,-6} {first.Traits.BitsPerWeight,6:F3} {t,7} {gemv * 1e6,9:F0} {gb,6:F1} {100 * gb / bandwidth[t],4:F0}% {gemm * 1e3,9:F1} {PromptTokens / gemm,8:F0} {2.0 * Rows * Cols * PromptTokens / gemm / 1e9,7:F1}");
            }
        }
        Sparse(weights, x, bandwidth);
        return 0;
    }

    /// <summary>Magnitude-pruned f32 matrices as CSR beside the dense f32 GEMV: bytes and time both shrink with sparsity.</summary>
    private static void Sparse(float[] weights, float[] x, Dictionary<int, double> bandwidth)
    {
        Console.WriteLine($"Pruned {Rows}×{Cols} (smallest magnitudes zeroed), CSR f32 + u16 index vs dense f32 GEMV:");
        Console.WriteLine($"{"sparsity",8} {"threads",7} {"MB",6} {"sparse µs",10} {"dense µs",9} {"speed-up",9}");
        var sorted = weights.Select(MathF.Abs).ToArray();
        Array.Sort(sorted);
        var y = new float[Rows];
        var dense = PackedMatrix.Pack(weights, Rows, Cols, GgmlType.F32);
        var denseCopies = new List<PackedMatrix> { dense };
        while (denseCopies.Count * dense.ByteCount < StreamBytes) denseCopies.Add(dense.Clone());
        foreach (double sparsity in new[] { 0.5, 0.75, 0.9, 0.95 })
        {
            float threshold = sorted[(int)(sparsity * sorted.Length)];
            var pruned = weights.Select(w => MathF.Abs(w) < threshold ? 0f : w).ToArray();
            var m = SparseMatrix.FromDense(pruned, Rows, Cols);
            var copies = Enumerable.Range(0, (int)Math.Max(1, StreamBytes / m.ByteCount)).Select(_ => SparseMatrix.FromDense(pruned, Rows, Cols)).ToList();
            foreach (int t in new[] { 1, 2 })
            {
                using var pool = new WorkerPool(t);
                double sparse = Timing.MedianSeconds(() => { foreach (var c in copies) c.Multiply(x.AsSpan(0, Cols), y, pool); }) / copies.Count;
                double full = Timing.MedianSeconds(() => { foreach (var c in denseCopies) c.Multiply(x.AsSpan(0, Cols), y, pool); }) / denseCopies.Count;
                Console.WriteLine($"{m.Sparsity,8:P0} {t,7} {m.ByteCount / 1e6,6:F1} {sparse * 1e6,10:F0} {full * 1e6,9:F0} {full / sparse,8:F1}×");
            }
        }
    }
}
