using BenchmarkDotNet.Attributes;
using Coldmind.Kernels;
using Coldmind.Numerics;
using Coldmind.Tensors;

namespace Coldmind.Benchmarks;

/// <summary>The blocked GEMM on each SIMD path against the naive reference (BenchmarkDotNet; one thread).</summary>
[MemoryDiagnoser]
public unsafe class GemmBenchmarks : IDisposable
{
    private float[] _a = [], _b = [], _c = [];
    private WorkerPool _pool = null!;

    [Params(64, 256)] public int Size;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Rng(1);
        _a = Tensor.Normal(rng, 1f, Size, Size).Storage;
        _b = Tensor.Normal(rng, 1f, Size, Size).Storage;
        _c = new float[Size * Size];
        _pool = new WorkerPool(1);
    }

    [GlobalCleanup]
    public void Dispose()
    {
        _pool.Dispose();
        GC.SuppressFinalize(this);
    }

    [Benchmark(Baseline = true)]
    public void Reference()
    {
        fixed (float* pa = _a, pb = _b, pc = _c)
            GemmReference.Multiply(Size, Size, Size, pa, Size, 1, pb, Size, 1, pc, Size, false);
    }

    [Benchmark] public void Scalar() => Blocked(SimdPath.Scalar);
    [Benchmark] public void Vector128() => Blocked(SimdPath.Vector128);
    [Benchmark] public void Vector256() => Blocked(SimdPath.Vector256);
    [Benchmark] public void Vector512() => Blocked(SimdPath.Vector512);

    private void Blocked(SimdPath path)
    {
        fixed (float* pa = _a, pb = _b, pc = _c)
            Gemm.Multiply(Size, Size, Size, pa, Size, 1, pb, Size, 1, pc, Size, false, _pool, path);
    }
}
