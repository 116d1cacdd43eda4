using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Xunit;
using Coldmind.Quantization;
using Coldmind.Tensors;

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
    [InlineData("Q6_K", "9208b728cec3a2128a2549d82ade6147fdf58d9a1f22d51aa0cfbfb6d6e1b349")]
    public void Blocks_are_byte_identical_to_ggml(string type, string sha256)
    {
        var blocks = GgmlTypes.Parse(type).Quantize(GoldenInput());
        Assert.Equal(sha256, Convert.ToHexStringLower(SHA256.HashData(blocks)));
    }

    /// <summary>
    /// Q6_K: ggml's own blocks for <see cref="GoldenInput"/>, stored here as ggml wrote them, must unpack to
    /// exactly the floats ggml's dequantize_row_q6_K gives (their SHA-256).
    /// </summary>
    [Fact]
    public void Q6_K_blocks_unpack_to_exactly_the_values_ggml_gives()
    {
        var blocks = Convert.FromBase64String(GgmlQ6KBlocks);
        Assert.Equal("9208b728cec3a2128a2549d82ade6147fdf58d9a1f22d51aa0cfbfb6d6e1b349", Convert.ToHexStringLower(SHA256.HashData(blocks)));
        var values = GgmlTypes.Traits(GgmlType.Q6_K).Dequantize(blocks, 1024);
        Assert.Equal("659b5393ed60b5f9a353949c432be1a012c87c4ef540cd8a5e28f769eefc6817",
            Convert.ToHexStringLower(SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()))));
        Assert.InRange(QuantizationError.NormalizedRmse(GoldenInput(), values), 0, 0.02);
    }

    private const string GgmlQ6KBlocks =
        "0FewNb4nDACOAnzweQJQ0MlB6mMLcPt0HZUeByDIQcm/NQ0QnASM8moBYNFHzze+CnDslA11LQcAxyDoUMoC4GffWMEJsCqiK5McBfB27lfOWgEwsxqQLIMPgOx4/1XRCEDWbuVt9QsAmxKqMLgAwNEpswuTDHD+ht5n/wfQKbEasYdosRtshhuxyhyx526ypJs55K460444k03kkjmkSpiqBdhiBq+yGK9F6KIFn3rIY64WY4kYfskjvsSjuRRjdYB6hnqGfIuBjXqGf3mEd3QSHacPsDDIQNpiC2D7hQ2VHgrQaLFF3ygMAJ8TfPCKA2AhyEDXXgZw9XwDiwMKILkxV7A1DiCsBY4CfABw0lfQSQQQdj6nD8cB8GHKgvxUDIATqiG5MAhA1l7mbfQMAJsSlz65AMBC6WDscg5wHJcepdAJwEe/Na0WCwCN8mvgaQE4n2Xqn7XoQjXvQiifSeiS5h6xh2ixG2zGG7HKHLHrbiniTribTeSjOuSOOdNOJJKGq1n2KKH2XIErXLYrUvase4yAin2IfIV8g3aIdH57g2SSBY0De/EJ0FjQSM4nDyCdE4T9dg5g31jASbEKoBuUDIUOBeB4zlrhJwMAkCxzD5YMoC+3MMhACmDrY/uFDQUQpr0WmwRwAmvgacEH0Di9Fp/sBAB1LZcPxwDgUMpy61MLgBObIqogCDDHX9dt5Q0AjB+WLagPwEHZUNtyDXALhg3Kl3nKEK3KYL4bYMonvsqgegSjbdaiidh+CaN+FKNJ1HkbrGbasYbYcQesctusStuOKeJOtJtN5KM65I45004keoKMhXt+doN4hXuJeoqAhWcS1g7gffSMA5sCoDG4QMdfBqAbkh10/wbgaO9HwTkAMJIVnAOLAmDiWdFYvwewJa0Egx0F8IfOaPA4AgChO3MdpUDXXtZ99QwAiwKqIrkBsF813hesBYASXPCJwgfwOc4HYusD8HQdlh6mD8BAyVHaUwaQBI3ya+AJ0EfPOL0mDxCB5l6Bq1iGK2H2KIH7XIErYsmUeskTrspjvRhjySS+yZI6p0k60G02kIrrkTrkTjqsuRtsphpxhhixx2yyG6zKgniAeX6FhYyAin2Je4x7g2qS";

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

    /// <summary>The formats whose quantizer is a projection (one absmax-style scale); Q6_K's scale search is not.</summary>
    public static TheoryData<string> ProjectionTypes => new(GgmlTypes.Supported.Where(t => t.Type != GgmlType.Q6_K).Select(t => t.Name));

    [Theory]
    [MemberData(nameof(ProjectionTypes))]
    public void Quantizing_dequantized_blocks_gives_the_same_bytes(string type)
    {
        var traits = GgmlTypes.Parse(type);
        var x = Tensor.Normal(new Rng(5), 0.05f, 256 * 12).ToArray();
        var blocks = traits.Quantize(x);
        Assert.Equal(blocks, traits.Quantize(traits.Dequantize(blocks, x.Length)));
    }

    [Fact]
    public void Requantizing_q6_k_stays_within_its_error_budget()
    {
        var q6k = GgmlTypes.Traits(GgmlType.Q6_K);
        var x = Tensor.Normal(new Rng(5), 0.05f, 256 * 12).ToArray();
        var once = q6k.Dequantize(q6k.Quantize(x), x.Length);
        var twice = q6k.Dequantize(q6k.Quantize(once), x.Length);
        Assert.InRange(QuantizationError.NormalizedRmse(once, twice), 0, 0.03);
    }

    [Theory]
    [InlineData("F32", 0.0)]
    [InlineData("F16", 5e-4)]
    [InlineData("BF16", 4e-3)]
    [InlineData("Q8_0", 0.01)]
    [InlineData("Q4_0", 0.12)]
    [InlineData("Q6_K", 0.03)]
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
        Assert.Equal(6.5625, GgmlTypes.Traits(GgmlType.Q6_K).BitsPerWeight);
        var q5k = GgmlTypes.Traits(GgmlType.Q5_K); // geometry is known for every ggml type, converters for some
        Assert.Contains("Q5_K blocks cannot be packed by Coldmind yet", Assert.Throws<ColdmindException>(() => q5k.Quantize(new float[256])).Message);
        Assert.Contains("Q5_K blocks cannot be unpacked by Coldmind yet", Assert.Throws<ColdmindException>(() => q5k.Dequantize(new byte[176], 256)).Message);
        Assert.Contains("Unknown tensor type 'q3'", Assert.Throws<ColdmindException>(() => GgmlTypes.Parse("q3")).Message);
    }
}
