using Xunit;
using Coldmind.Tensors;
using static Coldmind.Tests.GradCheck;

namespace Coldmind.Tests;

/// <summary>Ops at training-sized shapes, where the kernels take their blocked and multi-threaded paths.</summary>
public class LargeShapeGradientTests
{
    [Theory]
    [InlineData(32, 64, 300)] [InlineData(11, 64, 300)] [InlineData(128, 300, 100)]
    public void Linear_at_training_shapes(int rows, int inF, int outF) =>
        Check(x => Tensor.Linear(x[0], x[1], x[2]), [Rand(1, rows, inF), Rand(2, outF, inF), Rand(3, outF)], maxProbes: 20);

    [Fact]
    public void Element_wise_ops_split_over_the_pool() // 40 000 elements: above the size where chunks go to the workers
    {
        Check(x => x[0].Gelu(), [Rand(1, 200, 200)], maxProbes: 15);
        Check(x => x[0].Relu(), [RandAwayFromZero(2, 200, 200)], maxProbes: 15);
    }
}
