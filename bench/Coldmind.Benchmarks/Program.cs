using BenchmarkDotNet.Running;
using Coldmind.Benchmarks;

// dotnet run -c Release --project bench/Coldmind.Benchmarks -- gemm            GEMM GFLOP/s vs this CPU's peak
// dotnet run -c Release --project bench/Coldmind.Benchmarks -- train-vs-torch  MLP epoch, Coldmind vs PyTorch, 1 and 2 threads
// dotnet run -c Release --project bench/Coldmind.Benchmarks -- ternary-gemv    ternary vs float32 GEMV at BitNet-2B4T shapes vs bandwidth
// dotnet run -c Release --project bench/Coldmind.Benchmarks -- sparse-gemv     pruned layer at batch 1: dense vs CSR float vs sparse ternary as weights are kept
// dotnet run -c Release --project bench/Coldmind.Benchmarks -- packed-gemv     GEMV/GEMM of every ggml type with a dot kernel vs bandwidth
// dotnet run -c Release --project bench/Coldmind.Benchmarks -- llm-vs-llama --llama-bench PATH --model F.gguf   runtime vs llama-bench, same file
// dotnet run -c Release --project bench/Coldmind.Benchmarks -- cost-vs-measured  the cost model's GEMV estimates on the calibrated host vs timed GEMVs
// dotnet run -c Release --project bench/Coldmind.Benchmarks -- serving-vs-run --model F.gguf   OpenAI server vs run: TTFT, tokens/s, 1/4/16 clients
// dotnet run -c Release --project bench/Coldmind.Benchmarks -- bdn [--filter *] BenchmarkDotNet suites
return args.FirstOrDefault() switch
{
    "gemm" => GemmThroughput.Run(),
    "train-vs-torch" => TrainVsTorch.Run(args.Skip(1).ToArray()),
    "ternary-gemv" => TernaryGemvBench.Run(),
    "sparse-gemv" => SparseGemvBench.Run(),
    "packed-gemv" => PackedMatrixBench.Run(),
    "llm-vs-llama" => LlmVsLlama.Run(args.Skip(1).ToArray()),
    "cost-vs-measured" => CostVsMeasured.Run(),
    "serving-vs-run" => ServingVsRun.Run(args.Skip(1).ToArray()),
    "bdn" => RunBenchmarkDotNet(args.Skip(1).ToArray()),
    _ => Usage(),
};

static int RunBenchmarkDotNet(string[] rest)
{
    BenchmarkSwitcher.FromAssembly(typeof(GemmBenchmarks).Assembly).Run(rest);
    return 0;
}

static int Usage()
{
    Console.Error.WriteLine("usage: Coldmind.Benchmarks gemm | train-vs-torch [--epochs-of N] | ternary-gemv | sparse-gemv | packed-gemv | llm-vs-llama --llama-bench PATH --model F.gguf | cost-vs-measured | serving-vs-run --model F.gguf | bdn [BenchmarkDotNet args]");
    return 2;
}
