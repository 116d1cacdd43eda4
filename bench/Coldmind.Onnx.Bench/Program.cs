using Coldmind.Formats.Onnx;
using Microsoft.ML.OnnxRuntime;

// dump the graph ONNX Runtime runs after its optimizations
var (path, outPath) = (args[0], args[1]);
using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, OptimizedModelFilePath = outPath };
using (new InferenceSession(path, options)) { }
var m = OnnxFile.Read(outPath);
foreach (var n in m.Graph.Nodes) Console.WriteLine($"{n.Domain} {n.OpType} {string.Join(",", n.Attributes.Select(a => a.Name + "=" + a.Int))}");
