using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Coldmind.Kernels;
using Coldmind.Numerics;
using Coldmind.Tensors;

namespace Coldmind.Benchmarks;

/// <summary>
/// GEMM GFLOP/s on the shapes training uses, at 1 and 2 threads, as a fraction of this core's peak FMA
/// rate, measured in the same run by a register-only loop of independent FMAs (the clock in /proc/cpuinfo
/// is the base clock, not the boost clock the core runs at, so a peak computed from it is wrong).
/// </summary>
internal static class GemmThroughput
{
    public static unsafe int Run()
    {
        double peakPerCore = MeasurePeakGflops();
        Console.WriteLine($"Measured peak FMA rate: {peakPerCore:F0} GFLOP/s per core ({peakPerCore / CpuGhz():F0} FLOP per base-clock cycle); SIMD path {Simd.Best}.");
        Console.WriteLine($"{"m×n×k",-18} {"threads",7} {"median ms",10} {"GFLOP/s",9} {"% of peak",10}");
        (int M, int N, int K)[] shapes = [(128, 300, 784), (300, 784, 128), (128, 784, 300), (512, 512, 512), (1024, 1024, 1024), (64, 3136, 288)];
        foreach (var (m, n, k) in shapes)
        {
            var rng = new Rng(1);
            var a = Tensor.Normal(rng, 1f, m, k).Storage;
            var b = Tensor.Normal(rng, 1f, k, n).Storage;
            var c = new float[m * n];
            foreach (int threads in new[] { 1, 2 })
            {
                using var pool = new WorkerPool(threads);
                double flops = 2.0 * m * n * k;
                int reps = Math.Max(3, (int)(2e9 / flops));
                var times = new List<double>();
                fixed (float* pa = a, pb = b, pc = c)
                {
                    for (int w = 0; w < 3; w++) Gemm.Multiply(m, n, k, pa, k, 1, pb, n, 1, pc, n, false, pool);
                    for (int r = 0; r < 15; r++)
                    {
                        var sw = Stopwatch.StartNew();
                        for (int i = 0; i < reps; i++) Gemm.Multiply(m, n, k, pa, k, 1, pb, n, 1, pc, n, false, pool);
                        times.Add(sw.Elapsed.TotalMilliseconds / reps);
                    }
                }
                times.Sort();
                double ms = times[times.Count / 2];
                double gflops = flops / ms / 1e6;
                Console.WriteLine($"{$"{m}×{n}×{k}",-18} {threads,7} {ms,10:F3} {gflops,9:F1} {100 * gflops / (peakPerCore * threads),9:F0}%");
            }
        }
        return 0;
    }

    /// <summary>Median over runs of 12 independent FMA chains on the widest vector (enough to cover FMA latency × pipes).</summary>
    internal static double MeasurePeakGflops()
    {
        var runs = new List<double>();
        for (int r = 0; r < 7; r++)
        {
            const int iterations = 20_000_000;
            var sw = Stopwatch.StartNew();
            float sink = FmaChains(iterations);
            double seconds = sw.Elapsed.TotalSeconds;
            if (sink == 42f) Console.Write("");
            runs.Add(iterations * 12.0 * Vector512<float>.Count * 2 / seconds / 1e9);
        }
        runs.Sort();
        return runs[runs.Count / 2];
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float FmaChains(int iterations)
    {
        var m = Vector512.Create(0.999999f);
        var a = Vector512.Create(1e-7f);
        Vector512<float> c0 = m, c1 = m, c2 = m, c3 = m, c4 = m, c5 = m, c6 = m, c7 = m, c8 = m, c9 = m, c10 = m, c11 = m;
        for (int i = 0; i < iterations; i++)
        {
            c0 = Vector512.FusedMultiplyAdd(c0, m, a); c1 = Vector512.FusedMultiplyAdd(c1, m, a);
            c2 = Vector512.FusedMultiplyAdd(c2, m, a); c3 = Vector512.FusedMultiplyAdd(c3, m, a);
            c4 = Vector512.FusedMultiplyAdd(c4, m, a); c5 = Vector512.FusedMultiplyAdd(c5, m, a);
            c6 = Vector512.FusedMultiplyAdd(c6, m, a); c7 = Vector512.FusedMultiplyAdd(c7, m, a);
            c8 = Vector512.FusedMultiplyAdd(c8, m, a); c9 = Vector512.FusedMultiplyAdd(c9, m, a);
            c10 = Vector512.FusedMultiplyAdd(c10, m, a); c11 = Vector512.FusedMultiplyAdd(c11, m, a);
        }
        return Vector512.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11);
    }

    internal static double CpuGhz()
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("cpu MHz", StringComparison.Ordinal));
            if (line != null) return double.Parse(line.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture) / 1000;
        }
        catch (IOException) { }
        return 3.0;
    }
}
