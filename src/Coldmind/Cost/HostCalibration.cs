using System.Diagnostics;
using Coldmind.Kernels;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Cost;

/// <summary>
/// Calibrates the shipped `host` profile on this machine: the op rates Coldmind's own kernels sustain on
/// cache-resident operands (fp32 GEMM, a Q6_K GEMV for int8, the I2×4 ternary kernel over 4 tokens) and the
/// streaming read bandwidth of buffers sized for L2, L3 and DRAM. Medians of a few runs; about a second.
/// </summary>
public static unsafe class HostCalibration
{
    public static DeviceProfile Calibrate(WorkerPool pool)
    {
        var host = DeviceProfile.Load("host");
        var rates = new Dictionary<OpKind, double>
        {
            [OpKind.Fp32Mac] = Fp32Rate(pool),
            [OpKind.Int8Mac] = Int8Rate(pool),
            [OpKind.TernaryAdd] = TernaryRate(pool),
        };
        var memory = host.Memory.Select(m =>
        {
            // each level streamed with a buffer half its size (DRAM: 256 MB, far beyond the caches); the first measurement warms the code up
            long bytes = m.OnChip ? m.Bytes / 2 : 256L << 20;
            int passes = m.OnChip ? 41 : 5;
            MemoryBandwidth.Measure(pool, bytes, passes);
            return m with { BytesPerSecond = 1e9 * MemoryBandwidth.Measure(pool, bytes, passes) };
        }).ToArray();
        var sources = new Dictionary<string, string>(host.Sources)
        {
            ["ops_per_second"] = $"measured now on {pool.Threads} thread(s): fp32 GEMM, Q6_K GEMV (int8 dots against Q8_K), I2×4 ternary GEMM, cache-resident",
            ["memory"] = $"measured now on {pool.Threads} thread(s): streaming reads of buffers half each level's size (DRAM: 256 MB)",
        };
        return host with { OpsPerSecond = rates, Memory = memory, Sources = sources };
    }

    /// <summary>The median time of <paramref name="work"/> after a quarter second of warm-up (tiered JIT compiles hot kernels in the meantime).</summary>
    private static double Median(int runs, Action work)
    {
        for (var warm = Stopwatch.StartNew(); warm.Elapsed.TotalSeconds < 0.25;) work();
        var times = new List<double>();
        for (int i = 0; i < runs; i++)
        {
            var clock = Stopwatch.StartNew();
            work();
            times.Add(clock.Elapsed.TotalSeconds);
        }
        times.Sort();
        return times[runs / 2];
    }

    private static float[] Random(int n, ulong seed)
    {
        var rng = new Rng(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = rng.NextFloat() * 2 - 1;
        return x;
    }

    private static double Fp32Rate(WorkerPool pool)
    {
        const int n = 384;
        var a = Random(n * n, 1);
        var b = Random(n * n, 2);
        var c = new float[n * n];
        double seconds = Median(5, () =>
        {
            fixed (float* pa = a, pb = b, pc = c) Gemm.Multiply(n, n, n, pa, n, 1, pb, n, 1, pc, n, false, pool);
        });
        return (double)n * n * n / seconds;
    }

    private static double Int8Rate(WorkerPool pool)
    {
        // one token, as generation runs it, on the type of quantised output heads; 3.4 MB of Q6_K stays in L3
        const int rows = 2048, columns = 2048;
        var w = PackedMatrix.Pack(Random(rows * columns, 3), rows, columns, GgmlType.Q6_K);
        var x = Random(columns, 4);
        var y = new float[rows];
        double seconds = Median(15, () =>
        {
            for (int i = 0; i < 4; i++) w.Multiply(x, y, pool);
        }) / 4;
        return (double)rows * columns / seconds;
    }

    private static double TernaryRate(WorkerPool pool)
    {
        const int rows = 2048, columns = 4096, tokens = TernaryGemv.TileTokens; // 2 MB of I2×4: in L3
        var w = TernaryMatrix.Quantize(Random(rows * columns, 5), rows, columns);
        var x = Enumerable.Range(0, tokens).Select(t => new TernaryGemv.Activations(Random(columns, 6 + (ulong)t), w.Chunks)).ToArray();
        var y = new float[rows * tokens];
        double seconds = Median(15, () => TernaryGemv.Multiply(w, x, y, pool));
        return (double)rows * columns * tokens / seconds;
    }
}
