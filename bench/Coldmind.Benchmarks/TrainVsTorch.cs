using System.Diagnostics;
using System.Text.Json;
using Coldmind.Data;
using Coldmind.Nn.Optim;
using Coldmind.Nn;
using Coldmind.Numerics;
using Coldmind.Tensors;

namespace Coldmind.Benchmarks;

/// <summary>
/// Side by side: one epoch of MLP 784-300-100-10 (Adam, batch 128) on Fashion-MNIST's 60 000 training
/// images in Coldmind and in PyTorch (bench/Coldmind.Benchmarks/peers/torch_mlp.py), at 1 and 2 threads.
/// Each side runs several epochs in one process; the first is warm-up, the median of the rest is reported.
/// </summary>
internal static class TrainVsTorch
{
    public static int Run(string[] args)
    {
        int epochs = args.Length >= 2 && args[0] == "--epochs-of" ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 4;
        var (train, _) = BuiltinData.FashionMnist();
        string python = File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
        string script = Path.Combine(AppContext.BaseDirectory, "peers", "torch_mlp.py");
        Console.WriteLine($"MLP 784-300-100-10, Adam lr 1e-3, batch 128, one epoch = 60 000 images; median of epochs 2..{epochs}.");
        Console.WriteLine($"{"threads",7} {"Coldmind s",11} {"PyTorch s",10} {"Coldmind/PyTorch",17}  PyTorch build");
        double bestTorch = double.MaxValue, bestOurs = double.MaxValue;
        foreach (int threads in new[] { 1, 2 })
        {
            double ours = Timing.Median(Coldmind(train, threads, epochs).Skip(1));
            var (torch, build) = Torch(python, script, threads, epochs);
            bestTorch = Math.Min(bestTorch, torch);
            bestOurs = Math.Min(bestOurs, ours);
            Console.WriteLine($"{threads,7} {ours,11:F2} {torch,10:F2} {ours / torch,17:F2}  {build}");
        }
        Console.WriteLine($"best Coldmind {bestOurs:F2} s vs best PyTorch {bestTorch:F2} s: ratio {bestOurs / bestTorch:F2} (≤ 1.0 means Coldmind is at least as fast).");
        return 0;
    }

    private static List<double> Coldmind(Dataset train, int threads, int epochs)
    {
        WorkerPool.Shared = new WorkerPool(threads);
        var rng = new Rng(0);
        var model = new Mlp(784, [300, 100], 10, rng);
        var opt = new AdamW(model.Parameters().ToList(), 1e-3f, weightDecay: 0f);
        var times = new List<double>();
        for (int e = 0; e < epochs; e++)
        {
            var sw = Stopwatch.StartNew();
            foreach (var batch in Batches.Shuffled(train.Count, 128, rng))
            {
                var loss = Tensor.CrossEntropy(model.Forward(train.Inputs(batch)), train.LabelsAt(batch));
                opt.ZeroGrad();
                loss.Backward();
                opt.Step();
            }
            times.Add(sw.Elapsed.TotalSeconds);
        }
        return times;
    }

    private static (double Seconds, string Build) Torch(string python, string script, int threads, int epochs)
    {
        var psi = new ProcessStartInfo(python, [script, threads.ToString(System.Globalization.CultureInfo.InvariantCulture), epochs.ToString(System.Globalization.CultureInfo.InvariantCulture)])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {python}");
        string output = p.StandardOutput.ReadToEnd();
        string error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"the PyTorch peer failed (install python3-torch and libopenblas0-pthread):\n{error}");
        using var json = JsonDocument.Parse(output);
        var secs = json.RootElement.GetProperty("epoch_seconds").EnumerateArray().Select(e => e.GetDouble()).Skip(1);
        return (Timing.Median(secs), $"torch {json.RootElement.GetProperty("torch").GetString()} ({json.RootElement.GetProperty("blas").GetString()})");
    }
}
