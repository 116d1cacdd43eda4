using System.Diagnostics;
using Coldmind.Export.Onnx;
using Coldmind.Models.Onnx;
using Coldmind.Formats.Onnx;
using Google.Protobuf;
using Xunit;

namespace Coldmind.Onnx.Tests;

/// <summary>What the importer refuses, each with one clear message; and the reader against damaged files.</summary>
public class RefusalTests
{
    /// <summary>A one-layer graph: input (batch, 4) → Gemm (3 outputs) → <paramref name="extra"/> nodes after
    /// it.</summary>
    private static OnnxModel Graph(IEnumerable<OnnxNode> extra, string output, int opset = 13) =>
        new(
            8,
            [new OnnxOpset("", opset)],
            "test",
            new OnnxGraph(
                "g",
                [new OnnxNode("fc", "Gemm", "", ["x", "w", "b"], ["y"], [OnnxAttribute.Of("transB", 1L)]), .. extra],
                [OnnxTensor.Of("w", new float[12], 3, 4), OnnxTensor.Of("b", new float[3], 3)],
                [new OnnxValue("x", OnnxDataType.Float, [null, 4])],
                [new OnnxValue(output, OnnxDataType.Float, [null, 3])]
            ),
            new Dictionary<string, string>()
        );

    private static string Import(OnnxModel model)
    {
        using var dir = new TempDir();
        string path = dir.File("m.onnx");
        OnnxFile.Write(path, model);
        return Assert.Throws<ColdmindException>(() => OnnxImporter.Import(path, "digits")).Message;
    }

    [Fact]
    public void An_unsupported_op_is_named_with_its_node_and_opset()
    {
        var message = Import(Graph([new OnnxNode("resize_1", "Resize", "", ["y"], ["z"], [])], "z", opset: 17));
        Assert.Contains("node 'resize_1' (Resize, opset 17)", message);
        Assert.Contains("does not import this operator", message);
    }

    [Fact]
    public void A_graph_with_a_cycle_is_refused()
    {
        var message = Import(
            Graph(
                [new OnnxNode("a", "Relu", "", ["c"], ["d"], []), new OnnxNode("b", "Relu", "", ["d"], ["c"], [])],
                "y"
            )
        );
        Assert.Contains("cycle through node 'a' (Relu)", message);
    }

    [Fact]
    public void A_skip_connection_is_refused_as_not_a_chain()
    {
        var message = Import(
            Graph(
                [
                    new OnnxNode("r", "Relu", "", ["y"], ["r1"], []),
                    new OnnxNode("sum", "Add", "", ["r1", "y"], ["z"], []),
                ],
                "z"
            )
        );
        Assert.Contains("node 'sum' (Add, opset 13)", message);
        Assert.Contains("skip connection", message);
    }

    [Fact]
    public void An_opset_outside_11_to_21_is_refused()
    {
        Assert.Contains("opset 9", Import(Graph([], "y", opset: 9)));
    }

    [Fact]
    public void External_data_is_refused_with_how_to_fix_it()
    {
        // written field by field as ONNX numbers them: ModelProto.graph (7) → GraphProto.initializer (5) → TensorProto
        // with dims (1), data_type (2), name (8), external_data (13: key 1, value 2), data_location (14) = EXTERNAL
        var location = Message(o =>
        {
            o.WriteTag(1, WireFormat.WireType.LengthDelimited);
            o.WriteString("location");
            o.WriteTag(2, WireFormat.WireType.LengthDelimited);
            o.WriteString("weights.bin");
        });
        var tensor = Message(o =>
        {
            o.WriteTag(1, WireFormat.WireType.Varint);
            o.WriteInt64(4);
            o.WriteTag(2, WireFormat.WireType.Varint);
            o.WriteInt32(1);
            o.WriteTag(8, WireFormat.WireType.LengthDelimited);
            o.WriteString("w");
            o.WriteTag(13, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(location);
            o.WriteTag(14, WireFormat.WireType.Varint);
            o.WriteInt32(1);
        });
        var graph = Message(o =>
        {
            o.WriteTag(5, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(tensor);
        });
        var model = Message(o =>
        {
            o.WriteTag(1, WireFormat.WireType.Varint);
            o.WriteInt64(8);
            o.WriteTag(7, WireFormat.WireType.LengthDelimited);
            o.WriteBytes(graph);
        });
        var message = Assert.Throws<ColdmindException>(() => OnnxFile.Parse(model.ToByteArray(), "m.onnx")).Message;
        Assert.Contains("tensor 'w' keeps its data in an external file (weights.bin)", message);
    }

    private static ByteString Message(Action<CodedOutputStream> write)
    {
        var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        write(output);
        output.Flush();
        return ByteString.CopyFrom(stream.ToArray());
    }

    [Fact]
    public void A_truncated_file_is_refused()
    {
        var bytes = File.ReadAllBytes(OrtPeer.Fixture("fashion_cnn.onnx"));
        var message = Assert
            .Throws<ColdmindException>(() => OnnxFile.Parse(bytes[..(bytes.Length / 2)], "half.onnx"))
            .Message;
        Assert.Contains("'half.onnx' is not a readable ONNX file (truncated or corrupt protobuf)", message);
    }

    [Fact]
    public void A_tensor_whose_data_does_not_fill_its_shape_is_refused()
    {
        var model = Graph([], "y") is var m
            ? m with
            {
                Graph = m.Graph with
                {
                    Initializers = [OnnxTensor.Of("w", new float[11], 3, 4), OnnxTensor.Of("b", new float[3], 3)],
                },
            }
            : null;
        var message = Assert
            .Throws<ColdmindException>(() => OnnxFile.Parse(OnnxFile.ToBytes(model!), "m.onnx"))
            .Message;
        Assert.Contains("tensor 'w' has 44 bytes of raw data; its shape [3, 4] of Float needs 48", message);
    }

    [Fact]
    public void Damaged_files_import_or_fail_with_a_coldmind_message_never_anything_else()
    {
        // seeded: 600 mutants of a PyTorch CNN and of a Coldmind export (truncations and bit flips)
        using var dir = new TempDir();
        var seeds = new[]
        {
            File.ReadAllBytes(OrtPeer.Fixture("fashion_cnn.onnx")),
            OnnxFile.ToBytes(Graph([new OnnxNode("s", "Softmax", "", ["y"], ["z"], [])], "z")),
        };
        var rng = new Tensors.Rng(36);
        int refused = 0,
            imported = 0;
        foreach (var seed in seeds)
            for (int i = 0; i < 300; i++)
            {
                var bytes = (byte[])seed.Clone();
                if (i % 3 == 0)
                    bytes = bytes[..rng.NextInt(bytes.Length)];
                else
                    for (int f = rng.NextInt(8) + 1; f > 0; f--)
                        bytes[rng.NextInt(bytes.Length)] ^= (byte)(1 << rng.NextInt(8));
                string path = dir.File($"m{i}.onnx");
                File.WriteAllBytes(path, bytes);
                try
                {
                    OnnxImporter.Import(path, "fashion-mnist").Build();
                    imported++;
                }
                catch (ColdmindException)
                {
                    refused++;
                }
            }
        Assert.True(refused > 100, $"{refused} refused, {imported} imported");
    }

    [Fact]
    public void The_cli_imports_a_pytorch_model_and_refuses_a_damaged_one_in_one_line()
    {
        using var dir = new TempDir();
        string checkpoint = dir.File("cnn.safetensors"),
            exported = dir.File("cnn.onnx");
        var (exit, _, err) = Cli(
            "import",
            OrtPeer.Fixture("fashion_mlp.onnx"),
            "--data",
            "fashion-mnist",
            "--out",
            checkpoint
        );
        Assert.True(exit == 0, err);
        (exit, _, err) = Cli("export", checkpoint, "--target", "onnx", "--out", exported);
        Assert.True(exit == 0, err);
        Assert.Equal("fashion-mnist", OnnxFile.Read(exported).Metadata["coldmind.data"]);
        var half = dir.File("half.onnx");
        File.WriteAllBytes(half, File.ReadAllBytes(OrtPeer.Fixture("fashion_mlp.onnx"))[..1000]);
        (exit, _, err) = Cli("import", half, "--out", dir.File("x.safetensors"));
        Assert.Equal(1, exit);
        Assert.StartsWith("error: ", err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.False(File.Exists(dir.File("x.safetensors")));
    }

    private static (int Exit, string Out, string Err) Cli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet", [Path.Combine(AppContext.BaseDirectory, "Coldmind.Cli.dll"), .. args])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        psi.Environment["NO_COLOR"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
