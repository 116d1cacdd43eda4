using Xunit;
using Coldmind.Kernels;
using Coldmind.Numerics;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Tests;

[Trait("Category", "Kernels")]
public unsafe class PackedMatrixTests
{
    /// <summary>Every type with a dot kernel.</summary>
    public static TheoryData<GgmlType> DotTypes() => new(CpuTypeTraits.All.Select(t => t.Format.Type));

    /// <summary>Lengths in whole blocks of both operands, including ones that are no multiple of any vector.</summary>
    private static int[] Lengths(TypeTraits t, TypeTraits dotType) => Math.Max(t.BlockSize, dotType.BlockSize) switch
    {
        256 => [256, 512, 768, 1280, 2560],
        32 => [32, 64, 96, 160, 288, 2592],
        _ => [1, 3, 8, 17, 255, 256, 1000, 2560],
    };

    private static float[] Values(Rng rng, int n, float scale = 1f) => Tensor.Normal(rng, scale, n).ToArray();

    [Theory]
    [MemberData(nameof(DotTypes))]
    public void Every_simd_path_equals_the_scalar_reference(GgmlType type)
    {
        var traits = GgmlTypes.Traits(type);
        var cpu = CpuTypeTraits.Of(type);
        var dotTraits = cpu.DotFormat;
        var rng = new Rng((ulong)type + 11);
        foreach (int n in Lengths(traits, dotTraits))
            for (int trial = 0; trial < 4; trial++)
            {
                var w = traits.Quantize(Values(rng, n, 0.05f));
                var x = dotTraits.Quantize(Values(rng, n, trial == 3 ? 1000f : 1f));
                fixed (byte* pw = w, px = x)
                {
                    float expected = cpu.Dot(pw, px, n, SimdPath.Scalar);
                    foreach (var path in Simd.Available)
                    {
                        float got = cpu.Dot(pw, px, n, path);
                        // block sums are exact integers; only the order of the float sums differs
                        Assert.True(Math.Abs(got - expected) <= 1e-5 * Magnitude(traits, w, dotTraits, x, n), $"{traits.Name} n={n} {path}: {got} vs {expected}");
                    }
                }
            }
    }

    /// <summary>Σ |w|·|x|: the scale that rounding errors of a dot product are measured against.</summary>
    private static double Magnitude(TypeTraits wt, byte[] w, TypeTraits xt, byte[] x, int n)
    {
        var a = wt.Dequantize(w, n);
        var b = xt.Dequantize(x, n);
        double sum = 0;
        for (int i = 0; i < n; i++) sum += Math.Abs((double)a[i] * b[i]);
        return sum;
    }

    [Theory]
    [MemberData(nameof(DotTypes))]
    public void Kernels_compute_the_dot_of_the_dequantized_operands(GgmlType type)
    {
        var traits = GgmlTypes.Traits(type);
        var cpu = CpuTypeTraits.Of(type);
        var dotTraits = cpu.DotFormat;
        var rng = new Rng((ulong)type + 99);
        int n = 2560;
        var w = traits.Quantize(Values(rng, n, 0.05f));
        var x = dotTraits.Quantize(Values(rng, n));
        var a = traits.Dequantize(w, n);
        var b = dotTraits.Dequantize(x, n);
        double expected = 0;
        for (int i = 0; i < n; i++) expected += (double)a[i] * b[i];
        fixed (byte* pw = w, px = x)
            foreach (var path in Simd.Available)
                Assert.True(Math.Abs(cpu.Dot(pw, px, n, path) - expected) <= 1e-5 * Magnitude(traits, w, dotTraits, x, n),
                    $"{traits.Name} {path}: {cpu.Dot(pw, px, n, path)} vs {expected}");
    }

    [Theory]
    [MemberData(nameof(DotTypes))]
    public void Gemm_and_gemv_agree_with_the_dequantized_reference_on_any_thread_count(GgmlType type)
    {
        var traits = GgmlTypes.Traits(type);
        var rng = new Rng((ulong)type + 7);
        int rows = 37, cols = 512, tokens = 5; // 37 rows: two full tiles and a ragged one
        var m = PackedMatrix.Pack(Values(rng, rows * cols, 0.05f), rows, cols, type);
        var x = Values(rng, tokens * cols);
        var expected = new float[tokens * rows];
        m.MultiplyReference(x, tokens, expected);
        // int8 activations lose up to half a step of 1/127 of each block's largest value
        double tolerance = CpuTypeTraits.Of(type).DotFormat.Type == GgmlType.F32 ? 1e-5 : 2e-2;
        float[]? first = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var pool = new WorkerPool(threads);
            var y = new float[tokens * rows];
            m.Multiply(x, tokens, y, pool);
            first ??= y;
            Assert.True(first.AsSpan().SequenceEqual(y), $"{traits.Name}: {threads} threads changed the result");
            for (int t = 0; t < tokens; t++)
            {
                var single = new float[rows];
                m.Multiply(x.AsSpan(t * cols, cols), single, pool);
                Assert.True(single.AsSpan().SequenceEqual(y.AsSpan(t * rows, rows)), $"{traits.Name}: GEMV differs from GEMM row {t}");
            }
            double err = 0, norm = 0;
            for (int i = 0; i < y.Length; i++) { err += Math.Pow(y[i] - expected[i], 2); norm += Math.Pow(expected[i], 2); }
            Assert.True(Math.Sqrt(err / norm) < tolerance, $"{traits.Name}: relative error {Math.Sqrt(err / norm)}");
        }
    }

    [Fact]
    public void Q8_K_keeps_each_value_within_half_a_step_and_sums_each_16()
    {
        var rng = new Rng(3);
        var x = Values(rng, 512, 3f);
        var bytes = GgmlTypes.Traits(GgmlType.Q8_K).Quantize(x);
        var back = GgmlTypes.Traits(GgmlType.Q8_K).Dequantize(bytes, x.Length);
        fixed (byte* p = bytes)
            for (int b = 0; b < 2; b++)
            {
                var block = (Q8_K.Block*)p + b;
                for (int j = 0; j < 256; j++) Assert.True(Math.Abs(x[256 * b + j] - back[256 * b + j]) <= Math.Abs(block->D) * 0.5001f);
                for (int s = 0; s < 16; s++)
                {
                    int sum = 0;
                    for (int j = 0; j < 16; j++) sum += block->Qs[16 * s + j];
                    Assert.Equal(sum, block->BSums[s]);
                }
            }
    }

    [Fact]
    public void Shapes_that_are_not_whole_blocks_are_refused()
    {
        var e = Assert.Throws<ColdmindException>(() => PackedMatrix.Pack(new float[4 * 300], 4, 300, GgmlType.TQ2_0));
        Assert.Contains("256", e.Message);
        var m = PackedMatrix.Pack(new float[4 * 256], 4, 256, GgmlType.Q8_0);
        Assert.Throws<ColdmindException>(() => m.Multiply(new float[255], new float[4]));
    }
}
