using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Coldmind.Quantization;
using Coldmind.Tensors;
using Xunit;

namespace Coldmind.Tests;

public class QuantizationTests
{
    /// <summary>
    /// SHA-256 of what llama.cpp's ggml (commit c392e5094, ggml_quantize_chunk = the *_ref quantizers) writes
    /// for <see cref="GoldenInput"/>; produced by a throwaway C harness against libggml-base built under /tmp
    /// (see docs/quantization.md). Equal hashes mean byte-identical blocks.
    /// </summary>
    [Theory]
    [InlineData("F16", "866bf795ff833f3d5485a9d3c5f62164641015623bbcef117b72a1058030587e")]
    [InlineData("BF16", "515aa165379071d00790248ac7cf360e82ec1ac735ae8ef4bd6d4b778cceb1ed")]
    [InlineData("Q8_0", "778d3904fac9c6a25e4516f99bfb455dd576a48702685e767ab589e44b99e9c7")]
    [InlineData("Q4_0", "7774add41f63a251aeb03f6a8b8c567bbf2873bc1fae373cfe7c1b0089145868")]
    [InlineData("TQ1_0", "523bd144c097f5e0f063b4e4edee4e296287085810f979d85bb9cd1dd7faf2d9")]
    [InlineData("TQ2_0", "9c23ab4c649519c2a587c7af1cdcac8d713475d68a63bc121475ff29944bca59")]
    public void Blocks_are_byte_identical_to_ggml(string type, string sha256)
    {
        var blocks = GgmlTypes.Parse(type).Quantize(GoldenInput());
        Assert.Equal(sha256, Convert.ToHexStringLower(SHA256.HashData(blocks)));
    }

    /// <summary>1024 values, exact in float32 so C and C# see the same bits: ((37i mod 101) − 50) / 16, every 7th zero.</summary>
    private static float[] GoldenInput() =>
        Enumerable.Range(0, 1024).Select(i => i % 7 == 0 ? 0f : ((i * 37 % 101) - 50) / 16f).ToArray();

    [Fact]
    public void Block_sizes_match_the_structs_and_the_published_bits_per_weight()
    {
        Assert.Equal(Q8_0.BytesPerBlock, Unsafe.SizeOf<Q8_0.Block>());
        Assert.Equal(Q4_0.BytesPerBlock, Unsafe.SizeOf<Q4_0.Block>());
        Assert.Equal(TQ1_0.BytesPerBlock, Unsafe.SizeOf<TQ1_0.Block>());
        Assert.Equal(TQ2_0.BytesPerBlock, Unsafe.SizeOf<TQ2_0.Block>());
        Assert.Equal(8.5, GgmlTypes.Traits(GgmlType.Q8_0).BitsPerWeight);
        Assert.Equal(4.5, GgmlTypes.Traits(GgmlType.Q4_0).BitsPerWeight);
        Assert.Equal(1.6875, GgmlTypes.Traits(GgmlType.TQ1_0).BitsPerWeight);
        Assert.Equal(2.0625, GgmlTypes.Traits(GgmlType.TQ2_0).BitsPerWeight);
        Assert.Equal(16, GgmlTypes.Traits(GgmlType.BF16).BitsPerWeight);
    }

    public static TheoryData<string> Types => new(GgmlTypes.Supported.Select(t => t.Name));

    [Theory]
    [MemberData(nameof(Types))]
    public void Quantizing_dequantized_blocks_gives_the_same_bytes(string type)
    {
        var traits = GgmlTypes.Parse(type);
        var x = Tensor.Normal(new Rng(5), 0.05f, 256 * 12).ToArray();
        var blocks = traits.Quantize(x);
        Assert.Equal(blocks, traits.Quantize(traits.Dequantize(blocks, x.Length)));
    }

    [Theory]
    [InlineData("F32", 0.0)]
    [InlineData("F16", 5e-4)]
    [InlineData("BF16", 4e-3)]
    [InlineData("Q8_0", 0.01)]
    [InlineData("Q4_0", 0.12)]
    public void Error_stays_within_its_budget_on_gaussian_weights(string type, double budget)
    {
        var traits = GgmlTypes.Parse(type);
        var x = Tensor.Normal(new Rng(9), 0.02f, 256 * 40).ToArray();
        Assert.InRange(QuantizationError.NormalizedRmse(x, traits.Dequantize(traits.Quantize(x), x.Length)), 0, budget);
    }

    [Theory]
    [InlineData("TQ1_0")] [InlineData("TQ2_0")]
    public void Ternary_weights_survive_up_to_the_f16_scale(string type)
    {
        var traits = GgmlTypes.Parse(type);
        var rng = new Rng(3);
        var x = Enumerable.Range(0, 256 * 8).Select(_ => (rng.NextInt(3) - 1) * 0.0137f).ToArray();
        Assert.InRange(QuantizationError.NormalizedRmse(x, traits.Dequantize(traits.Quantize(x), x.Length)), 0, 1e-3); // half has 11 bits
    }

    [Fact]
    public void Bad_lengths_and_types_are_clear_errors()
    {
        var q4 = GgmlTypes.Traits(GgmlType.Q4_0);
        Assert.Contains("blocks of 32; 33 values", Assert.Throws<ColdmindException>(() => q4.Quantize(new float[33])).Message);
        Assert.Contains("bytes do not hold", Assert.Throws<ColdmindException>(() => q4.Dequantize(new byte[17], 32)).Message);
        var q6k = GgmlTypes.Traits(GgmlType.Q6_K);
        Assert.Equal(6.5625, q6k.BitsPerWeight); // geometry is known for every ggml type …
        Assert.Contains("Q6_K blocks cannot be unpacked by Coldmind yet", Assert.Throws<ColdmindException>(() => q6k.Dequantize(new byte[210], 256)).Message);
        Assert.Contains("Unknown tensor type 'q3'", Assert.Throws<ColdmindException>(() => GgmlTypes.Parse("q3")).Message);
    }
}
