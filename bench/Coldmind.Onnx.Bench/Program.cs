using Microsoft.ML.OnnxRuntime;
using System.Globalization;
using Coldmind.Data;
using Coldmind.Export.Onnx;
using Coldmind.Formats.Onnx;
using Coldmind.Kernels;
using Coldmind.LmTraining;
using Coldmind.Models.Onnx;
using Coldmind.Nn;
using Coldmind.Numerics;
using Coldmind.Quantization;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;
using Coldmind.Tensors;

// dotnet run -c Release --project bench/Coldmind.Onnx.Bench [-- --epochs N --fixtures DIR] dotnet run -c Release
// --project bench/Coldmind.Onnx.Bench -- --ops MODEL.onnx   the nodes ONNX Runtime runs after its optimizations ONNX
// Runtime as a speed peer: the same Fashion-MNIST MLP (784-128-64-10, ReLU) and CNN
// (tests/fixtures/onnx/fashion_cnn.onnx, exported by PyTorch) at batch 1 and 64, 1 and 2 threads, medians of 11 timed
// passes; Coldmind's float, int8 (post-training, g32) and ternary (BitLinear hidden layers, float head) compact runtime
// against ONNX Runtime on the ONNX Coldmind exports of the same models (float; int8 QDQ, which ONNX Runtime fuses into
// MatMulNBits; ternary QDQ); the CNN in float and int8/g32 (Coldmind: its tensor engine on the rounded weights; ONNX
// Runtime: PyTorch's file, and Coldmind's QDQ export). Table on stdout, progress on stderr.
if (args is ["--ops", var modelPath])
{
    string optimized = Path.Combine(Path.GetTempPath(), $"coldmind-ort-{Environment.ProcessId}.onnx");
    using (
        var so = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            OptimizedModelFilePath = optimized,
        }
    )
    using (new Microsoft.ML.OnnxRuntime.InferenceSession(modelPath, so)) { }
    foreach (var n in OnnxFile.Read(optimized).Graph.Nodes)
        Console.WriteLine(
            $"{(n.Domain.Length > 0 ? n.Domain + "." : "")}{n.OpType} {string.Join(" ", n.Attributes.Where(a => a.Type == OnnxAttributeType.Int).Select(a => $"{a.Name}={a.Int}"))}"
        );
    File.Delete(optimized);
    return 0;
}

int epochs = 1;
string fixtures = Path.Combine(AppContext.BaseDirectory, "../../../../../tests/fixtures/onnx");
for (int i = 0; i + 1 < args.Length; i += 2)
    (epochs, fixtures) = args[i] switch
    {
        "--epochs" => (int.Parse(args[i + 1], CultureInfo.InvariantCulture), fixtures),
        "--fixtures" => (epochs, args[i + 1]),
        _ => throw new ArgumentException($"unknown option {args[i]}"),
    };

var data = BuiltinData.Load("fashion-mnist", 0);
var test = data.Test;
var meta = new Dictionary<string, string> { ["coldmind.data"] = "fashion-mnist", ["coldmind.seed"] = "0" };
Console.Error.WriteLine($"training the MLP ({epochs} epoch(s)) and its ternary version ...");
var options = new TrainOptions
{
    Epochs = epochs,
    BatchSize = 64,
    LearningRate = 2e-3f,
};
var mlp = new Mlp(784, [128, 64], 10, new Rng(0));
Trainer.Fit(mlp, data.Train, data.Validation, options);
var ternaryMlp = new Mlp(784, [128, 64], 10, new Rng(1), ternary: true);
ternaryMlp.LoadState(mlp.NamedParameters().ToDictionary(p => p.Name, p => p.Tensor), partial: true);
Trainer.Fit(ternaryMlp, data.Train, data.Validation, options);
var int8 = PtqScheme.Parse("int8/g32");
var compact = new (string Name, CompactClassifier Model)[]
{
    ("float", CompactClassifier.Compile(mlp, meta)),
    ("int8", CompactClassifier.Compile(mlp, meta, [int8, int8, int8])),
    ("ternary", CompactClassifier.Compile(ternaryMlp, meta)),
};
var cnnImport = OnnxImporter.Import(Path.Combine(fixtures, "fashion_cnn.onnx"), "fashion-mnist");

// the CNN's int8 form as `ptq --save` writes it: Conv and Gemm weights rounded (int8/g32), run in float by Coldmind,
// exported as codes and DequantizeLinear for ONNX Runtime
var cnnInt8 = cnnImport.Spec.Build(new Rng(0));
cnnInt8.LoadState(
    cnnImport.State.ToDictionary(
        kv => kv.Key,
        kv =>
            kv.Value.Rank >= 2
                ? Tensor.FromArray(int8.Apply(kv.Value.ToArray(), kv.Value.Numel / kv.Value.Shape[0]), kv.Value.Shape)
                : kv.Value
    )
);
var cnnInt8Meta = new Dictionary<string, string>(cnnImport.Metadata) { ["coldmind.ptq"] = int8.Name };
var cnns = new (string Name, ClassifierModel Model, OnnxModel Onnx)[]
{
    (
        "float",
        ClassifierModel.Of(cnnImport.Build(), cnnImport.Spec, "cnn", cnnImport.Metadata),
        OnnxFile.Read(Path.Combine(fixtures, "fashion_cnn.onnx"))
    ),
    (
        "int8",
        ClassifierModel.Of(cnnInt8, cnnImport.Spec, "cnn int8", cnnInt8Meta),
        OnnxExporter.Export(cnnInt8, cnnImport.Spec, cnnInt8Meta)
    ),
};

// raw pixels for ONNX Runtime, scaled ones for Coldmind: each runtime gets what its model takes
var raw = test.Features.Select(v => MathF.Round(v * 255)).ToArray();
var rows =
    new List<(string Network, string Runtime, string Form, int Threads, int Batch, double Micros, float Accuracy)>();
foreach (int threads in new[] { 1, 2 })
{
    WorkerPool.Shared = new WorkerPool(threads);
    foreach (int batch in new[] { 1, 64 })
    {
        Console.Error.WriteLine($"{threads} thread(s), batch {batch} ...");
        foreach (var (name, model) in compact)
        {
            rows.Add(
                (
                    "MLP",
                    "Coldmind",
                    name,
                    threads,
                    batch,
                    Time(() =>
                    {
                        for (int e = 0; e < batch; e++)
                            model.Predict(test.Features.AsSpan(e * 784, 784));
                    }),
                    model.Accuracy(test)
                )
            );
            rows.Add(
                (
                    "MLP",
                    "ONNX Runtime",
                    name,
                    threads,
                    batch,
                    Ort(OnnxExporter.Export(model, meta), [784], threads, batch, out float a),
                    a
                )
            );
        }
        var cnnTest = test.Subset(Enumerable.Range(0, batch).ToArray());
        foreach (var (name, model, onnx) in cnns)
        {
            rows.Add(
                (
                    "CNN",
                    "Coldmind",
                    name,
                    threads,
                    batch,
                    Time(() => model.Logits(cnnTest)),
                    Accuracy(model.Logits(test))
                )
            );
            rows.Add(
                ("CNN", "ONNX Runtime", name, threads, batch, Ort(onnx, [1, 28, 28], threads, batch, out float c), c)
            );
        }
    }
}

Console.WriteLine(
    $"ONNX Runtime {OrtEnv.Instance().GetVersionString()}; {Environment.ProcessorCount} cores, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}; "
        + "µs per batch, median of 11 passes of at least 40 ms each"
);
Console.WriteLine();
Console.WriteLine(
    "| network | form | threads | batch | Coldmind µs | ONNX Runtime µs | Coldmind / ORT | accuracy (Coldmind / ORT) |"
);
Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---|");
foreach (var g in rows.GroupBy(r => (r.Network, r.Form, r.Threads, r.Batch)))
{
    var cm = g.First(r => r.Runtime == "Coldmind");
    var ort = g.First(r => r.Runtime == "ONNX Runtime");
    Console.WriteLine(
        $"| {g.Key.Network} | {g.Key.Form} | {g.Key.Threads} | {g.Key.Batch} | {cm.Micros:F1} | {ort.Micros:F1} | {cm.Micros / ort.Micros:F2} | {cm.Accuracy:P2} / {ort.Accuracy:P2} |"
    );
}
Console.WriteLine();
foreach (var g in rows.Where(r => r.Network == "MLP").GroupBy(r => (r.Threads, r.Batch)))
{
    var ternary = g.First(r => r.Runtime == "Coldmind" && r.Form == "ternary");
    var best = g.Where(r => r.Runtime == "ONNX Runtime" && r.Form != "ternary").MinBy(r => r.Micros);
    Console.WriteLine(
        $"MLP, {g.Key.Threads} thread(s), batch {g.Key.Batch}: Coldmind ternary {ternary.Micros:F1} µs vs ONNX Runtime's best ({best.Form}) {best.Micros:F1} µs: "
            + $"{best.Micros / ternary.Micros:F2}× {(ternary.Micros < best.Micros ? "faster" : "slower")}"
    );
}
return 0;

// µs of one call of work: median of 11 timed passes of enough calls to last 40 ms
static double Time(Action work)
{
    int calls = 0;
    var probe = System.Diagnostics.Stopwatch.StartNew();
    while (probe.Elapsed.TotalMilliseconds < 40 || calls < 3)
    {
        work();
        calls++;
    }
    int repeat = Math.Max(1, calls);
    return Timing.MedianSeconds(
            () =>
            {
                for (int i = 0; i < repeat; i++)
                    work();
            },
            runs: 11
        )
        * 1e6
        / repeat;
}

float Accuracy(float[] logits) =>
    (float)Enumerable.Range(0, test.Count).Count(i => Sampler.ArgMax(logits.AsSpan(i * 10, 10)) == test.Labels[i])
    / test.Count;

// ONNX Runtime with its default optimizations on `threads` intra-op threads; µs per batch, and its accuracy on the test
// split
double Ort(OnnxModel model, int[] shape, int threads, int batch, out float accuracy)
{
    using var so = new SessionOptions
    {
        IntraOpNumThreads = threads,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
    };
    using var session = new Microsoft.ML.OnnxRuntime.InferenceSession(OnnxFile.ToBytes(model), so);
    string input = session.InputMetadata.Keys.Single(),
        output = session.OutputMetadata.Keys.First();
    int each = shape.Aggregate(1, (a, d) => a * d);
    long[] dims = [batch, .. shape.Select(d => (long)d)];
    using var run = new RunOptions();
    using var x = OrtValue.CreateTensorValueFromMemory(raw.AsMemory(0, batch * each).ToArray(), dims);
    double micros = Time(() =>
    {
        using var r = session.Run(run, [input], [x], [output]);
    });
    var logits = new List<float>();
    for (int start = 0; start < test.Count; start += 500)
    {
        int n = Math.Min(500, test.Count - start);
        using var xs = OrtValue.CreateTensorValueFromMemory(
            raw.AsMemory(start * each, n * each).ToArray(),
            [n, .. shape.Select(d => (long)d)]
        );
        using var r = session.Run(run, [input], [xs], [output]);
        logits.AddRange(r[0].GetTensorDataAsSpan<float>().ToArray());
    }
    accuracy = Accuracy([.. logits]);
    return micros;
}
