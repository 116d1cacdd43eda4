using Xunit;
using System.Numerics;
using Coldmind.Export;
using Coldmind.Quantization;
using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;
using Coldmind.Tensors;

namespace Coldmind.Tests;

/// <summary>The integer helpers the exported C shares with its C# reference, against exact arithmetic.</summary>
public class ExportFixedPointTests
{
    [Fact]
    public void RoundShiftRoundsHalfAwayFromZero()
    {
        var rng = new Random(1);
        for (int i = 0; i < 10_000; i++)
        {
            long v = rng.NextInt64(-(1L << 50), 1L << 50);
            int shift = rng.Next(0, 40);
            var exact = (decimal)v / (decimal)Math.Pow(2, shift);
            Assert.Equal((long)Math.Round(exact, MidpointRounding.AwayFromZero), FixedPointPlan.RoundShift(v, shift));
        }
        Assert.Equal(-2, FixedPointPlan.RoundShift(-3, 1));
        Assert.Equal(2, FixedPointPlan.RoundShift(3, 1));
    }

    [Fact]
    public void SquareRootIsTheFloorOfTheRoot()
    {
        var rng = new Random(2);
        var values = Enumerable.Range(0, 5000).Select(_ => (ulong)rng.NextInt64(0, long.MaxValue) >> rng.Next(0, 60));
        foreach (ulong v in values.Concat([0UL, 1UL, 3UL, 4UL, ulong.MaxValue]))
        {
            var r = new BigInteger(FixedPointPlan.SquareRoot(v));
            Assert.True(r * r <= v && (r + 1) * (r + 1) > v, $"isqrt({v}) = {r}");
        }
    }

    [Fact]
    public void InputIsQuantizedFromTheFloatsBitsAsRoundingWould()
    {
        // a one-layer plan whose input scale is 1/127 of the calibration's largest value, 3.0
        var layer = new CodeLayer(2, 4, false, PtqMethod.Int8, 0, [1, 2, 3, 4, -1, -2, -3, -4], [0.5f], null);
        var graph = new ExportGraph("t", [layer], [4], new Dictionary<string, string>());
        var plan = FixedPointPlan.Build(graph, [3f, 0, 0, 0]);
        Assert.Equal(3.0 / 127, plan.InputScale, 12);
        var rng = new Random(3);
        int off = 0;
        for (int i = 0; i < 100_000; i++)
        {
            float x = (float)(rng.NextDouble() * 8 - 4) * (i % 10 == 0 ? 1e-3f : 1f);
            int expected = (int)Math.Clamp(Math.Round(x / plan.InputScale, MidpointRounding.AwayFromZero), -127, 127);
            int got = plan.QuantizeInput(x);
            Assert.InRange(got - expected, -1, 1); // the 31-bit inverse can move an exact half
            if (got != expected) off++;
        }
        Assert.True(off < 10, $"{off} of 100 000 inputs rounded differently");
        Assert.Equal(0, plan.QuantizeInput(float.NaN));
        Assert.Equal(127, plan.QuantizeInput(float.PositiveInfinity));
        Assert.Equal(-127, plan.QuantizeInput(-1e30f));
        Assert.Equal(0, plan.QuantizeInput(1e-30f));
    }

    /// <summary>The float reference of the exported program predicts as the runtime on a real shrunk model.</summary>
    [Fact]
    public void FloatReferenceMatchesTheCompactRuntime()
    {
        var data = Data.BuiltinData.Load("digits");
        var mlp = new Nn.Mlp(64, [32], 10, new Rng(5), ternary: true);
        Nn.Trainer.Fit(mlp, data.Train, null, new Nn.TrainOptions { Epochs = 3, Seed = 5 });
        var compact = CompactClassifier.Compile(mlp);
        var graph = ExportGraph.FromModule(mlp, [64], "t", new Dictionary<string, string>());
        for (int e = 0; e < data.Test.Count; e++)
        {
            var x = data.Test.Features.AsSpan(e * 64, 64);
            var expected = compact.Predict(x);
            var got = CReference.Float(graph.Layers, x);
            for (int c = 0; c < 10; c++) Assert.Equal(expected[c], got[c], 1e-4f * (1 + Math.Abs(expected[c])));
        }
    }
}
