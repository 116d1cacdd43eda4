using Coldmind.Models;
using Coldmind.Data;
using Coldmind.Formats.Onnx;
using Coldmind.Nn;
using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Xunit;

namespace Coldmind.Onnx.Tests;

/// <summary>ONNX Runtime as the judge: runs a model on a data set's raw features and compares with Coldmind.</summary>
internal static class OrtPeer
{
    private static readonly Lazy<DataSplits> FashionSplits = new(() => BuiltinData.Load("fashion-mnist", 0));
    private static readonly Lazy<DataSplits> DigitsSplits = new(() => BuiltinData.Load("digits", 0));

    public static DataSplits Fashion => FashionSplits.Value;
    public static DataSplits Digits => DigitsSplits.Value;

    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name);

    /// <summary>
    /// The raw features a user has: the data loader's scaling undone. Pixels are whole numbers, so rounding recovers
    /// them exactly (scaled · divisor may be off by an ulp).
    /// </summary>
    public static float[] Raw(Dataset data, InputScaling scaling)
    {
        var (offset, divisor) = scaling.Expand(data.FeatureCount);
        var raw = new float[data.Features.Length];
        bool pixels = scaling.SampleShape.Length == 3;
        for (int i = 0; i < raw.Length; i++)
        {
            int j = i % data.FeatureCount;
            float v = data.Features[i] * divisor[j] + offset[j];
            raw[i] = pixels ? MathF.Round(v) : v;
        }
        return raw;
    }

    /// <summary>
    /// ONNX Runtime's <paramref name="output"/> (count, classes) for every example, in batches of 500, on one thread.
    /// </summary>
    public static float[] Run(
        byte[] model,
        float[] raw,
        int[] inputShape,
        int count,
        string output = "logits",
        OrtMode mode = OrtMode.Shipped
    )
    {
        using var options = new SessionOptions
        {
            IntraOpNumThreads = 1,
            InterOpNumThreads = 1,
            GraphOptimizationLevel =
                mode == OrtMode.Unoptimized
                    ? GraphOptimizationLevel.ORT_DISABLE_ALL
                    : GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        if (mode == OrtMode.Fp32)
            options.AddSessionConfigEntry("session.qdq_matmulnbits_accuracy_level", "1");
        using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(model, options);
        string input = session.InputMetadata.Keys.Single();
        int each = inputShape.Aggregate(1, (a, d) => a * d);
        var result = new List<float>();
        for (int start = 0; start < count; start += 500)
        {
            int n = Math.Min(500, count - start);
            var tensor = new DenseTensor<float>(raw.AsMemory(start * each, n * each), [n, .. inputShape]);
            using var outputs = session.Run([NamedOnnxValue.CreateFromTensor(input, tensor)], [output]);
            result.AddRange(outputs[0].AsEnumerable<float>());
        }
        return [.. result];
    }

    /// <summary>ONNX Runtime's logits of <paramref name="model"/> (an exported Coldmind model: input (batch, features)
    /// or images) on the test split.</summary>
    public static float[] RunExported(
        OnnxModel model,
        Dataset test,
        string output = "logits",
        OrtMode mode = OrtMode.Shipped
    )
    {
        var shape = model.Graph.Inputs[0].Dims.Skip(1).Select(d => (int)d!.Value).ToArray();
        return Run(
            OnnxFile.ToBytes(model),
            Raw(test, TrainingData.ScalingOf(Provenance.Read(model.Metadata, "the exported model"))),
            shape,
            test.Count,
            output,
            mode
        );
    }

    /// <summary>
    /// Asserts the two sets of logits agree: every value within <paramref name="tolerance"/> · (1 + |value|), and
    /// argmax equal for ≥ 99.9 % of the examples with every disagreement at a near-tie (Coldmind's two classes within
    /// <paramref name="tie"/>). Returns the largest difference and the count of disagreements.
    /// </summary>
    public static (float MaxDifference, int Disagreements) AssertAgree(
        float[] coldmind,
        float[] ort,
        int classes,
        float tolerance,
        float tie,
        string what
    )
    {
        Assert.Equal(coldmind.Length, ort.Length);
        int count = coldmind.Length / classes,
            disagreements = 0;
        float max = 0;
        for (int i = 0; i < coldmind.Length; i++)
        {
            float d = MathF.Abs(coldmind[i] - ort[i]);
            max = MathF.Max(max, d);
            Assert.True(
                d <= tolerance * (1 + MathF.Abs(coldmind[i])),
                $"{what}: logit {i % classes} of example {i / classes}: Coldmind {coldmind[i]}, ONNX Runtime {ort[i]}."
            );
        }
        for (int e = 0; e < count; e++)
        {
            var c = coldmind.AsSpan(e * classes, classes);
            int a = Sampler.ArgMax(c),
                b = Sampler.ArgMax(ort.AsSpan(e * classes, classes));
            if (a == b)
                continue;
            disagreements++;
            Assert.True(
                c[a] - c[b] <= tie,
                $"{what}: example {e}: Coldmind picks {a} ({c[a]}), ONNX Runtime {b} (Coldmind's logit {c[b]}): not a near-tie."
            );
        }
        Assert.True(
            disagreements <= count / 1000,
            $"{what}: {disagreements} of {count} argmax disagreements (more than 0.1 %)."
        );
        return (max, disagreements);
    }

    /// <summary>Argmax disagreements, each asserted to be a near-tie (Coldmind's two classes within <paramref
    /// name="tie"/>).</summary>
    public static int Disagreements(float[] coldmind, float[] ort, int classes, float tie, string what)
    {
        int disagreements = 0;
        for (int e = 0; e < coldmind.Length / classes; e++)
        {
            var c = coldmind.AsSpan(e * classes, classes);
            int a = Sampler.ArgMax(c),
                b = Sampler.ArgMax(ort.AsSpan(e * classes, classes));
            if (a == b)
                continue;
            disagreements++;
            Assert.True(
                c[a] - c[b] <= tie,
                $"{what}: example {e}: Coldmind picks {a} ({c[a]}), ONNX Runtime {b} (Coldmind's logit {c[b]}): not a near-tie."
            );
        }
        return disagreements;
    }
}

/// <summary>How ONNX Runtime is asked to run a model.</summary>
internal enum OrtMode
{
    /// <summary>Its defaults: all graph optimizations; DequantizeLinear + MatMul fuse into MatMulNBits at accuracy
    /// level 4, which rounds the activations to int8 too.</summary>
    Shipped,

    /// <summary>All graph optimizations, MatMulNBits computing in float (session.qdq_matmulnbits_accuracy_level =
    /// 1).</summary>
    Fp32,

    /// <summary>No graph optimization: the graph's own arithmetic.</summary>
    Unoptimized,
}

/// <summary>A temporary folder, deleted after the test.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("coldmind-onnx-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose() => Directory.Delete(Path, recursive: true);
}

/// <summary>Small models trained here, quickly, so exports have real weights to carry.</summary>
internal static class Trained
{
    public static Module Fit(ClassifierSpec spec, DataSplits data, int epochs, ulong seed = 0)
    {
        var model = spec.Build(new Tensors.Rng(seed));
        Trainer.Fit(
            model,
            data.Train,
            data.Validation,
            new TrainOptions
            {
                Epochs = epochs,
                BatchSize = 64,
                LearningRate = 2e-3f,
                Seed = seed,
            }
        );
        model.Eval();
        return model;
    }

    /// <summary>Metadata a model trained on <paramref name="data"/> carries, with a calibration temperature.</summary>
    public static Dictionary<string, string> Metadata(ClassifierSpec spec, string data, float temperature = 1.5f) =>
        new Provenance { Spec = spec, Data = data, Seed = 0, Temperature = temperature }.ToMetadata();
}
