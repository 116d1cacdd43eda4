using BenchmarkDotNet.Attributes;
using Coldmind.Kernels;
using Coldmind.Tensors;

namespace Coldmind.Benchmarks;

/// <summary>The fast GEMM against its naive reference and across SIMD paths (BenchmarkDotNet).</summary>
[MemoryDiagnoser]
public unsafe class GemmBenchmarks
{
    private float[] _a = [], _b = [], _c = [];

    [Params(64, 256)] public int Size;
    [Params(SimdPath.Scalar, SimdPath.Vector256, SimdPath.Vector512)] public SimdPath Path;

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Rng(1);
        _a = Tensor.Normal(rng, 1f, Size, Size).Storage;
        _b = Tensor.Normal(rng, 1f, Size, Size).Storage;
        _c = new float[Size * Size];
    }

    [Benchmark]
    public void Blocked()
    {
        fixed (float* pa = _a, pb = _b, pc = _c)
            Gemm.Multiply(Size, Size, Size, pa, Size, 1, pb, Size, 1, pc, Size, false, WorkerPool.Shared, Path);
    }

    [Benchmark(Baseline = true)]
    public void Reference()
    {
        if (Path != SimdPath.Scalar) return;
        fixed (float* pa = _a, pb = _b, pc = _c)
            GemmReference.Multiply(Size, Size, Size, pa, Size, 1, pb, Size, 1, pc, Size, false);
    }
}
