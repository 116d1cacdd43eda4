using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Coldmind.Numerics;

/// <summary>
/// The machine's read bandwidth as the kernels see it: every worker sums its share of a buffer far larger
/// than the caches, the median of several passes. The roofline of bandwidth-bound work (token generation
/// reads every weight once) is measured in the same run as the work, because it drifts between runs.
/// </summary>
public static unsafe class MemoryBandwidth
{
    /// <summary>GB/s read by <paramref name="pool"/>'s threads over <paramref name="bytes"/> (median of <paramref name="passes"/>).</summary>
    public static double Measure(WorkerPool pool, long bytes = 1L << 30, int passes = 5)
    {
        bytes -= bytes % (64L * pool.Threads);
        var buffer = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            NativeMemory.Fill(buffer, (nuint)bytes, 1);
            var sums = new long[pool.Threads];
            var times = new List<double>();
            for (int pass = 0; pass <= passes; pass++)
            {
                var clock = Stopwatch.StartNew();
                pool.Run(pool.Threads, part =>
                {
                    long n = bytes / pool.Threads / 64;
                    var p = (Vector512<long>*)(buffer + part * (bytes / pool.Threads));
                    var acc = Vector512<long>.Zero;
                    for (long i = 0; i < n; i++) acc += p[i];
                    sums[part] = Vector512.Sum(acc);
                });
                if (pass > 0) times.Add(clock.Elapsed.TotalSeconds); // the first pass warms up
            }
            times.Sort();
            return bytes / times[times.Count / 2] / 1e9;
        }
        finally { NativeMemory.AlignedFree(buffer); }
    }
}
