using Coldmind.Cost;
using Coldmind.Kernels;
using Coldmind.Numerics;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Benchmarks;

/// <summary>
/// The cost model against this machine: the host profile is calibrated, then GEMVs at BitNet-2B4T shapes are
/// timed (ternary I2×4, Q8_0 and float32, streamed from memory over ≥ 512 MB of copies) and set beside the
/// model's estimate for the same pass, as estimate ÷ measured. One 2B4T token is checked by
/// `coldmind cost MODEL.gguf --device host --measure`.
/// </summary>
internal static class CostVsMeasured
{
    private const long StreamBytes = 512L << 20;

    public static int Run()
    {
        var pool = WorkerPool.Shared;
        var host = HostCalibration.Calibrate(pool);
        Console.WriteLine($"host calibrated on {pool.Threads} thread(s): " + string.Join(", ", host.OpsPerSecond.Select(k => $"{k.Key} {k.Value / 1e9:F0} G/s"))
            + "; " + string.Join(", ", host.Memory.Select(m => $"{m.Name} {m.BytesPerSecond / 1e9:F0} GB/s")));
        Console.WriteLine($"{"rows×cols",-11} {"weights",-8} {"estimate µs",12} {"measured µs",12} {"est÷meas",9} {"bound",8}");
        foreach (var (rows, cols) in new[] { (2560, 2560), (6912, 2560) })
        {
            var rng = new Rng(1);
            var w = Tensor.Normal(rng, 0.02f, rows * cols).ToArray();
            var x = Tensor.Normal(rng, 1f, cols).ToArray();
            var y = new float[rows];

            using var ternary = TernaryMatrix.Quantize(w, rows, cols);
            var copies = Enumerable.Range(0, Copies(ternary.PackedBytes)).Select(_ => ternary.Clone()).ToList();
            var act = new TernaryGemv.Activations(x, ternary.Chunks);
            double seconds = Timing.MedianSeconds(() => { foreach (var m in copies) TernaryGemv.Multiply(m, act, y, pool); }) / copies.Count;
            Report(rows, cols, "ternary", OpKind.TernaryAdd, ternary.PackedBytes, copies.Count, seconds, host);
            copies.ForEach(m => m.Dispose());

            var q8 = PackedMatrix.Pack(w, rows, cols, GgmlType.Q8_0);
            var q8s = Enumerable.Range(0, Copies(q8.ByteCount)).Select(_ => q8.Clone()).ToList();
            seconds = Timing.MedianSeconds(() => { foreach (var m in q8s) m.Multiply(x, y, pool); }) / q8s.Count;
            Report(rows, cols, "Q8_0", OpKind.Int8Mac, q8.ByteCount, q8s.Count, seconds, host);

            var f32 = PackedMatrix.Pack(w, rows, cols, GgmlType.F32);
            var f32s = Enumerable.Range(0, Copies(f32.ByteCount)).Select(_ => f32.Clone()).ToList();
            seconds = Timing.MedianSeconds(() => { foreach (var m in f32s) m.Multiply(x, y, pool); }) / f32s.Count;
            Report(rows, cols, "f32", OpKind.Fp32Mac, f32.ByteCount, f32s.Count, seconds, host);
        }
        return 0;
    }

    private static int Copies(long bytes) => (int)Math.Max(2, (StreamBytes + bytes - 1) / bytes);

    /// <summary>The estimate for the whole streamed pass (its weights far exceed the caches), per GEMV.</summary>
    private static void Report(int rows, int cols, string name, OpKind kind, long bytes, int copies, double measured, DeviceProfile host)
    {
        var layers = Enumerable.Range(0, copies).Select(i => LayerWork.Matrix($"{i}", kind, rows, cols, (long)rows * cols, bytes, 4)).ToArray();
        var e = CostModel.Estimate(new Workload("pass", "pass", layers), host);
        double estimate = e.Seconds / copies;
        Console.WriteLine($"{$"{rows}×{cols}",-11} {name,-8} {estimate * 1e6,12:F0} {measured * 1e6,12:F0} {estimate / measured,9:F2} {e.Bound,8}");
    }
}
