using Xunit;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Tests;

public class CodePackingTests
{
    [Theory]
    [InlineData(PtqMethod.Int8)]
    [InlineData(PtqMethod.Int4)]
    [InlineData(PtqMethod.Int2)]
    [InlineData(PtqMethod.Ternary)]
    [InlineData(PtqMethod.Binary)]
    public void Codes_pack_to_their_bits_and_unpack_unchanged(PtqMethod method)
    {
        var rng = new Rng(9);
        var (min, max) = PtqScheme.CodeRange(method);
        for (int n = 1; n < 70; n++)
        {
            var codes = Enumerable.Range(0, n).Select(_ => (sbyte)(method == PtqMethod.Binary ? rng.NextInt(2) * 2 - 1 : min + rng.NextInt(max - min + 1))).ToArray();
            var packed = CodePacking.Pack(codes, method);
            Assert.Equal((long)Math.Ceiling(n * new PtqScheme(method, 0).CodeBits / 8 - 1e-9), packed.Length);
            var back = new sbyte[n];
            CodePacking.Unpack(packed, method, back);
            Assert.Equal(codes, back);
        }
        Assert.Throws<ColdmindException>(() => CodePacking.Pack([(sbyte)(max + 1)], method));
    }
}
