using System.Diagnostics;
using Coldmind.Kernels;
using Coldmind.Numerics;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Cost;

/// <summary>
/// Calibrates the shipped `host` profile on this machine: the op rates Coldmind's own kernels sustain on
/// cache-resident operands (fp32 GEMM, a Q6_K GEMV for int8, an I2×4 ternary GEMV) and the
/// streaming read bandwidth of buffers sized for L2, L3 and DRAM. Medians of a few runs; about a second.
/// </summary>
public static unsafe class HostCalibration
{
    /// <summary>
    /// Seconds each kernel runs untimed first when tiered JIT is on, so that the timed runs see optimised code
    /// (the CLI turns tiering off and skips this; library callers and tests may have it on).
    /// </summary>
    private static readonly double Warmup = AppContext.TryGetSwitch("System.Runtime.TieredCompilation", out bool tiered) && !tiered ? 0 : 0.25;

    public static DeviceProfile Calibrate(WorkerPool pool)
    {
        var host = DeviceProfile.Load("host");
        var rates = new Dictionary<OpKind, double>
        {
            [OpKind.Fp32Mac] = Fp32Rate(pool),
            [OpKind.Int8Mac] = Int8Rate(pool),
            [OpKind.TernaryAdd] = TernaryRate(pool),
        };
        if (Warmup > 0) Timing.MedianSeconds(() => MemoryBandwidth.Measure(pool, 1L << 20, 5), 1, Warmup);
        // each level streamed with a buffer half its size (DRAM: 256 MB, far beyond the caches)
        var memory = host.Memory.Select(m => m with
        {
            BytesPerSecond = 1e9 * MemoryBandwidth.Measure(pool, m.OnChip ? m.Bytes / 2 : 256L << 20, m.OnChip ? 41 : 5),
        }).ToArray();
        var sources = new Dictionary<string, string>(host.Sources)
        {
            ["ops_per_second"] = $"measured now on {pool.Threads} thread(s): fp32 GEMM, Q6_K GEMV (int8 dots against Q8_K), I2×4 ternary GEMV, cache-resident, in batches of ≥ 5 ms",
            ["memory"] = $"measured now on {pool.Threads} thread(s): streaming reads of buffers half each level's size (DRAM: 256 MB)",
        };
        return host with { OpsPerSecond = rates, Memory = memory, Sources = sources };
    }

    private static float[] Random(int n, ulong seed)
    {
        var rng = new Rng(seed);
        var x = new float[n];
        for (int i = 0; i < n; i++) x[i] = rng.NextFloat() * 2 - 1;
        return x;
    }

    /// <summary>
    /// Operations per second of <paramref name="work"/> (<paramref name="ops"/> a call), timed in batches of at
    /// least 5 ms so that a pool wake-up or a hypervisor hiccup cannot dominate one timing; the median of 9 batches.
    /// </summary>
    private static double Rate(double ops, Action work)
    {
        var clock = Stopwatch.StartNew();
        int calls = 0;
        do { work(); calls++; } while (clock.Elapsed.TotalSeconds < Math.Max(Warmup, BatchSeconds));
        int batch = Math.Max(1, (int)Math.Ceiling(calls * BatchSeconds / clock.Elapsed.TotalSeconds));
        return ops * batch / Timing.MedianSeconds(() =>
        {
            for (int i = 0; i < batch; i++) work();
        }, 9);
    }

    private const double BatchSeconds = 0.005;

    private static double Fp32Rate(WorkerPool pool)
    {
        const int n = 384;
        var a = Random(n * n, 1);
        var b = Random(n * n, 2);
        var c = new float[n * n];
        return Rate((double)n * n * n, () =>
        {
            fixed (float* pa = a, pb = b, pc = c) Gemm.Multiply(n, n, n, pa, n, 1, pb, n, 1, pc, n, false, pool);
        });
    }

    /// <summary>One token, as generation runs it, on the type of quantised output heads; 3.4 MB of Q6_K stays in L3.</summary>
    private static double Int8Rate(WorkerPool pool)
    {
        const int rows = 2048, columns = 2048;
        var w = PackedMatrix.Pack(Random(rows * columns, 3), rows, columns, GgmlType.Q6_K);
        var x = Random(columns, 4);
        var y = new float[rows];
        return Rate((double)rows * columns, () => w.Multiply(x, y, pool));
    }

    /// <summary>One token, as generation runs it, on the I2×4 layout the runtime repacks ternary matrices into; 2 MB stays in L3.</summary>
    private static double TernaryRate(WorkerPool pool)
    {
        const int rows = 2048, columns = 4096;
        using var w = TernaryMatrix.Quantize(Random(rows * columns, 5), rows, columns);
        var x = new TernaryGemv.Activations(Random(columns, 6), w.Chunks);
        var y = new float[rows];
        return Rate((double)rows * columns, () => TernaryGemv.Multiply(w, x, y, pool));
    }
}
