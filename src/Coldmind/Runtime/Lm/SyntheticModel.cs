using Coldmind.Numerics;
using Coldmind.Formats;
using Coldmind.Quantization;
using Coldmind.Tensors;

namespace Coldmind.Runtime.Lm;

/// <summary>Model shapes for synthetic files: the real BitNet-b1.58-2B-4T and small ones for tests.</summary>
public sealed record ModelShape(string Name, int Hidden, int Layers, int FeedForward, int Heads, int KvHeads, int Vocab, int Context)
{
    public static readonly ModelShape BitNet2B4T = new("2b4t", 2560, 30, 6912, 20, 5, 128256, 4096);
    public static readonly ModelShape Small = new("small", 1024, 8, 2816, 16, 4, 32000, 2048);
    public static readonly ModelShape Tiny = new("tiny", 256, 2, 512, 4, 2, 512, 256);

    public static ModelShape Parse(string name) => new[] { BitNet2B4T, Small, Tiny }.FirstOrDefault(s => s.Name == name)
        ?? throw new ColdmindException($"Unknown shape '{name}'; choose 2b4t, small or tiny.");
}

/// <summary>
/// Writes a model of a given shape with random weights that llama.cpp and Coldmind both load: the fixture for
/// speed comparisons, since speed does not depend on the values. Linear weights are ternary ({−1, 0, 1} · 0.02)
/// in the chosen type; token embedding (and, for llama, the output head) in their own type (Q6_K by default,
/// as llama.cpp's quantizer writes them). Each tensor is filled with blocks drawn at random from a pool of
/// blocks packed once, so writing 2 billion weights takes seconds. The vocabulary is SentencePiece-style:
/// &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, the 256 byte tokens and filler words.
/// </summary>
public static class SyntheticModel
{
    private const int PoolRows = 64;

    public static void Write(string path, Architecture architecture, ModelShape shape, GgmlType linearType, GgmlType embeddingType, ulong seed,
        IProgress<StageProgress>? progress = null)
    {
        if (shape.Vocab < 3 + 256) throw new ColdmindException($"A vocabulary of {shape.Vocab} cannot hold the 259 base tokens.");
        string arch = architecture == Architecture.BitNet ? "bitnet" : "llama";
        var rng = new Rng(seed);
        var w = new GgufWriter();
        w.Set("general.architecture", GgufValue.Of(arch));
        w.Set("general.name", GgufValue.Of($"coldmind-synth-{arch}-{shape.Name}"));
        w.Set("general.alignment", GgufValue.Of(32u));
        w.Set("general.quantization_version", GgufValue.Of(2u));
        w.Set($"{arch}.context_length", GgufValue.Of((uint)shape.Context));
        w.Set($"{arch}.embedding_length", GgufValue.Of((uint)shape.Hidden));
        w.Set($"{arch}.block_count", GgufValue.Of((uint)shape.Layers));
        w.Set($"{arch}.feed_forward_length", GgufValue.Of((uint)shape.FeedForward));
        w.Set($"{arch}.attention.head_count", GgufValue.Of((uint)shape.Heads));
        w.Set($"{arch}.attention.head_count_kv", GgufValue.Of((uint)shape.KvHeads));
        w.Set($"{arch}.rope.dimension_count", GgufValue.Of((uint)(shape.Hidden / shape.Heads)));
        w.Set($"{arch}.rope.freq_base", GgufValue.Of(500000f));
        w.Set($"{arch}.attention.layer_norm_rms_epsilon", GgufValue.Of(1e-5f));
        w.Set($"{arch}.vocab_size", GgufValue.Of((uint)shape.Vocab));
        AddVocabulary(w, shape.Vocab);

        int kv = shape.Hidden / shape.Heads * shape.KvHeads;
        var linear = new Pool(linearType, ternary: true);
        var embedding = new Pool(embeddingType, ternary: false);
        int total = shape.Layers + 1, done = 0;
        w.AddTensor("token_embd.weight", [shape.Hidden, shape.Vocab], embeddingType, embedding.Fill(shape.Vocab, shape.Hidden, rng));
        w.AddTensor("output_norm.weight", [shape.Hidden], GgmlType.F32, Ones(shape.Hidden));
        if (architecture == Architecture.Llama)
            w.AddTensor("output.weight", [shape.Hidden, shape.Vocab], embeddingType, embedding.Fill(shape.Vocab, shape.Hidden, rng));
        progress?.Report(new StageProgress("writing", ++done, total));
        for (int l = 0; l < shape.Layers; l++)
        {
            string p = $"blk.{l}.";
            w.AddTensor(p + "attn_norm.weight", [shape.Hidden], GgmlType.F32, Ones(shape.Hidden));
            w.AddTensor(p + "attn_q.weight", [shape.Hidden, shape.Hidden], linearType, linear.Fill(shape.Hidden, shape.Hidden, rng));
            w.AddTensor(p + "attn_k.weight", [shape.Hidden, kv], linearType, linear.Fill(kv, shape.Hidden, rng));
            w.AddTensor(p + "attn_v.weight", [shape.Hidden, kv], linearType, linear.Fill(kv, shape.Hidden, rng));
            w.AddTensor(p + "attn_output.weight", [shape.Hidden, shape.Hidden], linearType, linear.Fill(shape.Hidden, shape.Hidden, rng));
            w.AddTensor(p + "ffn_norm.weight", [shape.Hidden], GgmlType.F32, Ones(shape.Hidden));
            w.AddTensor(p + "ffn_gate.weight", [shape.Hidden, shape.FeedForward], linearType, linear.Fill(shape.FeedForward, shape.Hidden, rng));
            w.AddTensor(p + "ffn_up.weight", [shape.Hidden, shape.FeedForward], linearType, linear.Fill(shape.FeedForward, shape.Hidden, rng));
            w.AddTensor(p + "ffn_down.weight", [shape.FeedForward, shape.Hidden], linearType, linear.Fill(shape.Hidden, shape.FeedForward, rng));
            if (architecture == Architecture.BitNet)
            {
                w.AddTensor(p + "attn_sub_norm.weight", [shape.Hidden], GgmlType.F32, Ones(shape.Hidden));
                w.AddTensor(p + "ffn_sub_norm.weight", [shape.FeedForward], GgmlType.F32, Ones(shape.FeedForward));
            }
            progress?.Report(new StageProgress("writing", ++done, total));
        }
        w.Write(path);
    }

    private static byte[] Ones(int n) => GgmlTypes.Traits(GgmlType.F32).Quantize(Enumerable.Repeat(1f, n).ToArray());

    private static void AddVocabulary(GgufWriter w, int size)
    {
        var tokens = new string[size];
        var scores = new float[size];
        var types = new int[size];
        tokens[0] = "<unk>"; types[0] = (int)TokenType.Unknown;
        tokens[1] = "<s>"; types[1] = (int)TokenType.Control;
        tokens[2] = "</s>"; types[2] = (int)TokenType.Control;
        for (int b = 0; b < 256; b++) { tokens[3 + b] = $"<0x{b:X2}>"; types[3 + b] = (int)TokenType.Byte; }
        for (int i = 259; i < size; i++) { tokens[i] = $"\u2581w{i - 259}"; types[i] = (int)TokenType.Normal; scores[i] = -(i - 259); }
        w.Set("tokenizer.ggml.model", GgufValue.Of("llama"));
        w.Set("tokenizer.ggml.tokens", GgufValue.Array(GgufValueType.String, tokens));
        w.Set("tokenizer.ggml.scores", GgufValue.Array(GgufValueType.Float32, scores));
        w.Set("tokenizer.ggml.token_type", GgufValue.Array(GgufValueType.Int32, types));
        w.Set("tokenizer.ggml.bos_token_id", GgufValue.Of(1u));
        w.Set("tokenizer.ggml.eos_token_id", GgufValue.Of(2u));
        w.Set("tokenizer.ggml.unknown_token_id", GgufValue.Of(0u));
        w.Set("tokenizer.ggml.add_bos_token", GgufValue.Of(true));
    }

    /// <summary>Packed blocks to draw rows from: <see cref="PoolRows"/> rows of 256·k values packed once per row length.</summary>
    private sealed class Pool(GgmlType type, bool ternary)
    {
        private readonly TypeTraits _traits = GgmlTypes.Traits(type);
        private readonly Dictionary<int, byte[]> _rows = [];

        public byte[] Fill(int rows, int columns, Rng rng)
        {
            if (!_rows.TryGetValue(columns, out var pool))
            {
                var values = new float[PoolRows * columns];
                for (int i = 0; i < values.Length; i++)
                    values[i] = ternary ? 0.02f * (rng.NextInt(3) - 1) : 0.02f * rng.NextNormal();
                _rows[columns] = pool = _traits.Quantize(values);
            }
            long rowBytes = _traits.ByteCount(columns);
            var data = new byte[checked(rows * rowBytes)];
            for (int r = 0; r < rows; r++)
                Buffer.BlockCopy(pool, (int)(rng.NextInt(PoolRows) * rowBytes), data, (int)(r * rowBytes), (int)rowBytes);
            return data;
        }
    }
}
