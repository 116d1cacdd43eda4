using Coldmind.Kernels;
using Coldmind.Numerics;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Benchmarks;

/// <summary>
/// Ternary GEMV at the BitNet-b1.58-2B-4T shapes, as GB/s of packed weights read and as a share of the
/// read bandwidth measured in the same run, for both ternary kernels (maddubs multiply-add and the
/// multiplication-free add/subtract), beside a float32 GEMV on the same shapes. Each timing pass
/// runs over enough distinct matrices (≥ 512 MB) that the weights stream from memory, not from cache.
/// </summary>
internal static unsafe class TernaryGemvBench
{
    private const long StreamBytes = 512L << 20;

    public static int Run()
    {
        (int Rows, int Cols)[] shapes = [(2560, 2560), (6912, 2560), (2560, 6912)];
        var bandwidth = TernaryGemvBench.PrintBandwidth();
        Console.WriteLine($"{"rows×cols",-12} {"threads",7} {"maddubs µs",11} {"GB/s",6} {"% bw",5} {"add/sub µs",11} {"GB/s",6} {"% bw",5} {"float32 µs",11} {"GB/s",6} {"% bw",5} {"best vs f32",12}");
        foreach (var (rows, cols) in shapes)
        {
            var rng = new Rng(1);
            var trits = new sbyte[rows * cols];
            for (int i = 0; i < trits.Length; i++) trits[i] = (sbyte)(rng.NextInt(3) - 1);
            using var first = TernaryMatrix.FromTrits(trits, rows, cols, 0.01f);
            var ternary = new List<TernaryMatrix> { first };
            while (ternary.Count * first.PackedBytes < StreamBytes) ternary.Add(first.Clone());
            long floatBytes = (long)rows * cols * 4;
            var dense = new List<float[]>();
            var w0 = Tensor.Normal(rng, 0.01f, rows * cols).ToArray();
            while (dense.Count * floatBytes < StreamBytes) dense.Add((float[])w0.Clone());
            var x = Tensor.Normal(rng, 1f, cols).ToArray();
            var y = new float[rows];
            foreach (int t in new[] { 1, 2 })
            {
                using var pool = new WorkerPool(t);
                var act = new TernaryGemv.Activations(x, first.Chunks);
                double madd = Timing.MedianSeconds(() => { foreach (var m in ternary) TernaryGemv.Multiply(m, act, y, pool); }) / ternary.Count;
                double addsub = Timing.MedianSeconds(() => { foreach (var m in ternary) TernaryGemv.Multiply(m, act, y, pool, kernel: TernaryKernel.AddSubtract); }) / ternary.Count;
                double flt = Timing.MedianSeconds(() => { foreach (var m in dense) FloatGemv(m, rows, cols, x, y, pool); }) / dense.Count;
                double mGb = first.PackedBytes / madd / 1e9, aGb = first.PackedBytes / addsub / 1e9, fGb = floatBytes / flt / 1e9;
                Console.WriteLine($"{$"{rows}×{cols}",-12} {t,7} {madd * 1e6,11:F0} {mGb,6:F1} {100 * mGb / bandwidth[t],4:F0}% {addsub * 1e6,11:F0} {aGb,6:F1} {100 * aGb / bandwidth[t],4:F0}% {flt * 1e6,11:F0} {fGb,6:F1} {100 * fGb / bandwidth[t],4:F0}% {flt / Math.Min(madd, addsub),11:F1}×");
            }
            foreach (var m in ternary.Skip(1)) m.Dispose();
        }
        return 0;
    }

    /// <summary>The read bandwidth on 1 and 2 threads, printed with the SIMD path: the roofline the GEMV benchmarks compare against.</summary>
    internal static Dictionary<int, double> PrintBandwidth()
    {
        Console.WriteLine($"SIMD path {Simd.Best}. Read bandwidth (streaming sum over 1 GiB, median of 5):");
        var bandwidth = new Dictionary<int, double>();
        foreach (int t in new[] { 1, 2 })
        {
            using var pool = new WorkerPool(t);
            bandwidth[t] = MemoryBandwidth.Measure(pool);
            Console.WriteLine($"  {t} thread(s): {bandwidth[t]:F1} GB/s");
        }
        return bandwidth;
    }

    /// <summary>y = W x in float32: one dot product per row, rows split over the pool.</summary>
    private static void FloatGemv(float[] w, int rows, int cols, float[] x, float[] y, WorkerPool pool) =>
        pool.Run(pool.Threads, part =>
        {
            for (int r = part * rows / pool.Threads; r < (part + 1) * rows / pool.Threads; r++)
                y[r] = System.Numerics.Tensors.TensorPrimitives.Dot(w.AsSpan(r * cols, cols), x);
        });
}
