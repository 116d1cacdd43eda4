using Xunit;
using Coldmind.Tensors;
using static Coldmind.Tests.GradCheck;

namespace Coldmind.Tests;

/// <summary>Every differentiable op against central finite differences, incl. broadcasting and views.</summary>
public class OpGradientTests
{
    [Theory]
    [InlineData(new[] { 3, 4 }, new[] { 3, 4 })]
    [InlineData(new[] { 3, 4 }, new[] { 4 })]
    [InlineData(new[] { 2, 1, 4 }, new[] { 3, 1 })]
    [InlineData(new int[0], new[] { 2, 3 })]
    public void Binary_ops_broadcast(int[] sa, int[] sb)
    {
        Check(x => x[0] + x[1], [Rand(1, sa), Rand(2, sb)]);
        Check(x => x[0] - x[1], [Rand(1, sa), Rand(2, sb)]);
        Check(x => x[0] * x[1], [Rand(1, sa), Rand(2, sb)]);
        var denom = Rand(2, sb);
        var s = denom.Span;
        for (int i = 0; i < s.Length; i++) s[i] = 1.5f + MathF.Abs(s[i]);
        Check(x => x[0] / x[1], [Rand(1, sa), denom]);
    }

    [Fact]
    public void Binary_ops_on_non_contiguous_views() =>
        Check(x => x[0].Transpose() * x[1].Slice(1, 1, 4), [Rand(1, 4, 3), Rand(2, 3, 5)]);

    [Fact] public void Scale_and_add_scalar() => Check(x => (x[0] * 3f + 1f), [Rand(1, 5)]);
    [Fact] public void Exp() => Check(x => x[0].Exp(), [Rand(1, 2, 5)]);
    [Fact] public void Log() => Check(x => x[0].Exp().AddScalar(0.5f).Log(), [Rand(1, 2, 5)]);
    [Fact] public void Sqrt() => Check(x => x[0].Square().AddScalar(1f).Sqrt(), [Rand(1, 2, 5)]);
    [Fact] public void Relu() => Check(x => x[0].Relu(), [RandAwayFromZero(1, 3, 7)]);
    [Fact] public void Squared_relu() => Check(x => x[0].SquaredRelu(), [RandAwayFromZero(1, 3, 7)]);
    [Fact] public void Gelu() => Check(x => x[0].Gelu(), [Rand(1, 3, 7)]);
    [Fact] public void Silu() => Check(x => x[0].Silu(), [Rand(1, 3, 7)]);
    [Fact] public void Sigmoid() => Check(x => x[0].Sigmoid(), [Rand(1, 3, 7)]);
    [Fact] public void Tanh() => Check(x => x[0].Tanh(), [Rand(1, 3, 7)]);

    [Fact]
    public void Dropout_gradient_follows_its_mask()
    {
        // The mask is drawn once per call, so each probe re-draws it from the same seed.
        Check(x => x[0].Dropout(0.3f, new Rng(5)), [Rand(1, 4, 6)]);
    }

    [Theory]
    [InlineData(0)] [InlineData(1)] [InlineData(-1)]
    public void Sum_mean_max_over_axis(int axis)
    {
        Check(x => x[0].Sum(axis), [Rand(1, 3, 4, 5)]);
        Check(x => x[0].Mean(axis, keepDim: true), [Rand(1, 3, 4, 5)]);
        Check(x => x[0].Max(axis), [Rand(1, 3, 4, 5)], h: 1e-3f);
    }

    [Fact] public void Sum_and_mean_of_all() => Check(x => x[0].Sum() + x[0].Mean(), [Rand(1, 3, 4)]);

    [Fact]
    public void Reshape_transpose_permute_slice()
    {
        Check(x => x[0].Reshape(4, -1).Transpose(), [Rand(1, 2, 3, 2)]);
        Check(x => x[0].Permute(2, 0, 1).Contiguous(), [Rand(1, 2, 3, 4)]);
        Check(x => x[0].Slice(1, 1, 2).Slice(0, 1, 1), [Rand(1, 3, 4)]);
        Check(x => x[0].Transpose().Reshape(-1), [Rand(1, 3, 4)]); // reshape of a view copies
    }

    [Fact]
    public void Concat_and_gather()
    {
        Check(x => Tensor.Concat(1, x[0], x[1], x[0]), [Rand(1, 2, 3), Rand(2, 2, 1)]);
        Check(x => x[0].Gather([2, 0, 2, 1]), [Rand(1, 3, 4)]);
        Check(x => Tensor.Embedding(x[0], [1, 4, 4, 0, 2, 3], 2, 3), [Rand(1, 5, 3)]);
    }

    [Theory]
    [InlineData(new[] { 3, 4 }, new[] { 4, 5 })]
    [InlineData(new[] { 2, 3, 4 }, new[] { 4, 5 })]
    [InlineData(new[] { 2, 3, 4 }, new[] { 2, 4, 5 })]
    [InlineData(new[] { 2, 1, 3, 4 }, new[] { 3, 4, 2 })]
    public void MatMul_batched_and_broadcast(int[] sa, int[] sb) => Check(x => x[0].MatMul(x[1]), [Rand(1, sa), Rand(2, sb)]);

    [Fact]
    public void MatMul_of_transposed_views() =>
        Check(x => x[0].Transpose().MatMul(x[1].Transpose()), [Rand(1, 4, 3), Rand(2, 5, 4)]);

    [Fact]
    public void Linear_with_and_without_bias()
    {
        Check(x => Tensor.Linear(x[0], x[1], x[2]), [Rand(1, 2, 3, 4), Rand(2, 5, 4), Rand(3, 5)]);
        Check(x => Tensor.Linear(x[0], x[1], null), [Rand(1, 7, 4), Rand(2, 3, 4)]);
    }

    [Fact] public void Softmax() => Check(x => x[0].Softmax(), [Rand(1, 3, 6)]);
    [Fact] public void Log_softmax() => Check(x => x[0].LogSoftmax(), [Rand(1, 3, 6)]);

    [Theory]
    [InlineData(0f)] [InlineData(0.1f)]
    public void Cross_entropy(float smoothing)
    {
        Check(x => Tensor.CrossEntropy(x[0], [0, 3, 2, 3], smoothing), [Rand(1, 4, 5)]);
        Check(x => Tensor.CrossEntropy(x[0], [0, 3, 2, 3], smoothing, [1f, 0.5f, 2f, 0f]), [Rand(1, 4, 5)]);
    }

    [Fact] public void Mean_squared_error() => Check(x => Tensor.MeanSquaredError(x[0], x[1]), [Rand(1, 3, 4), Rand(2, 3, 4)]);

    [Theory]
    [InlineData(1f)] [InlineData(4f)]
    public void Kl_divergence_with_temperature(float t) =>
        Check(x => Tensor.KlDivergence(x[0], x[1], t), [Rand(1, 3, 5), Rand(2, 3, 5)]);

    [Fact] public void Rms_norm() => Check(x => Tensor.RmsNorm(x[0], x[1]), [Rand(1, 3, 6), Rand(2, 6)]);
    [Fact] public void Layer_norm() => Check(x => Tensor.LayerNorm(x[0], x[1], x[2]), [Rand(1, 3, 6), Rand(2, 6), Rand(3, 6)]);

    [Theory]
    [InlineData(1, 0)] [InlineData(2, 1)]
    public void Conv2d(int stride, int padding) =>
        Check(x => Tensor.Conv2d(x[0], x[1], x[2], stride, padding), [Rand(1, 2, 3, 6, 5), Rand(2, 4, 3, 3, 2), Rand(3, 4)]);

    [Fact]
    public void Conv2d_kernel_wider_than_the_image_with_padding() =>
        Check(x => Tensor.Conv2d(x[0], x[1], null, 2, 2), [Rand(1, 2, 1, 3, 2), Rand(2, 2, 1, 5, 5)]);

    [Fact] public void Max_pool() => Check(x => x[0].MaxPool2d(2), [Rand(1, 2, 2, 4, 6)], h: 1e-3f);
    [Fact] public void Max_pool_general_window() => Check(x => x[0].MaxPool2d(3, 2), [Rand(1, 2, 2, 7, 6)], h: 1e-3f);

    [Fact]
    public void Max_pool_2x2_matches_the_naive_maximum_on_odd_sizes_and_ties()
    {
        var x = Rand(4, 3, 2, 5, 7);
        var s = x.Span;
        for (int i = 0; i < s.Length; i += 5) s[i] = 1f; // ties: the first maximum must win, as in the general path
        var y = x.MaxPool2d(2);
        Assert.Equal([3, 2, 2, 3], y.Shape);
        for (int n = 0; n < 3; n++) for (int c = 0; c < 2; c++) for (int oy = 0; oy < 2; oy++) for (int ox = 0; ox < 3; ox++)
        {
            float m = float.MinValue;
            for (int ky = 0; ky < 2; ky++) for (int kx = 0; kx < 2; kx++) m = Math.Max(m, x[n, c, 2 * oy + ky, 2 * ox + kx]);
            Assert.Equal(m, y[n, c, oy, ox]);
        }
    }

    [Theory]
    [InlineData(RopeMode.Interleaved)] [InlineData(RopeMode.NeoX)]
    public void Rope(RopeMode mode) => Check(x => x[0].Rope(3, 10000f, mode), [Rand(1, 2, 3, 2, 8)]);

    [Theory]
    [InlineData(4, 4)] [InlineData(4, 2)] [InlineData(3, 1)]
    public void Causal_attention_with_grouped_query_heads(int hq, int hkv) =>
        Check(x => Tensor.CausalSelfAttention(x[0], x[1], x[2]), [Rand(1, 2, 5, hq, 4), Rand(2, 2, 5, hkv, 4), Rand(3, 2, 5, hkv, 4)]);
}
