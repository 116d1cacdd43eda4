using Coldmind.Formats;
using Coldmind.Kernels;
using Coldmind.Quantization;

namespace Coldmind.Runtime.Lm;

/// <summary>A weight matrix the runtime multiplies with: Y (tokens × Rows) = X (tokens × Columns) Wᵀ.</summary>
public interface IWeightMatrix
{
    int Rows { get; }
    int Columns { get; }
    /// <summary>Bytes one multiplication reads.</summary>
    long ByteCount { get; }
    string Layout { get; }
    void Multiply(ReadOnlySpan<float> x, int tokens, Span<float> y);
}

/// <summary>A matrix in its GGUF type, multiplied in place in the mapping.</summary>
public sealed class GgufMatrix(PackedMatrix matrix) : IWeightMatrix
{
    public int Rows => matrix.Rows;
    public int Columns => matrix.Columns;
    public long ByteCount => matrix.ByteCount;
    public string Layout => matrix.Traits.Name;
    public void Multiply(ReadOnlySpan<float> x, int tokens, Span<float> y) => matrix.Multiply(x, tokens, y);
}

/// <summary>A TQ2_0/TQ1_0 matrix repacked at load into <see cref="TernaryMatrix"/>'s layout, with int8 activations per token (BitNet's absmax).</summary>
public sealed class RepackedTernary(TernaryMatrix matrix, string from) : IWeightMatrix, IDisposable
{
    public int Rows => matrix.Rows;
    public int Columns => matrix.Columns;
    public long ByteCount => matrix.PackedBytes;
    public string Layout => $"I2×4 (from {from})";

    public void Multiply(ReadOnlySpan<float> x, int tokens, Span<float> y)
    {
        if (x.Length != (long)tokens * Columns) throw new ColdmindException($"A {Rows}×{Columns} matrix times {tokens} token(s) needs x of {(long)tokens * Columns}, got {x.Length}.");
        var activations = Scratch(matrix.Chunks, tokens);
        for (int t = 0; t < tokens; t++) activations[t].Set(x.Slice(t * Columns, Columns));
        if (tokens == 1) TernaryGemv.Multiply(matrix, activations[0], y);
        else TernaryGemv.Multiply(matrix, new ArraySegment<TernaryGemv.Activations>(activations, 0, tokens), y);
    }

    /// <summary>The calling thread's activation buffers by a matrix's chunk count: allocated once, not per token.</summary>
    [ThreadStatic] private static Dictionary<int, TernaryGemv.Activations[]>? _scratch;

    private static TernaryGemv.Activations[] Scratch(int chunks, int tokens)
    {
        _scratch ??= [];
        if (!_scratch.TryGetValue(chunks, out var buffers) || buffers.Length < tokens)
        {
            var grown = new TernaryGemv.Activations[tokens];
            for (int t = 0; t < tokens; t++) grown[t] = buffers != null && t < buffers.Length ? buffers[t] : new TernaryGemv.Activations(chunks);
            _scratch[chunks] = buffers = grown;
        }
        return buffers;
    }

    public void Dispose() => matrix.Dispose();
}

/// <summary>A linear projection: a weight matrix and the per-tensor scale BitNet files may keep beside it.</summary>
public sealed record Projection(IWeightMatrix Matrix, float Scale)
{
    /// <summary>Y (tokens × Rows) = X (tokens × Columns) Wᵀ · scale.</summary>
    public void Multiply(ReadOnlySpan<float> x, int tokens, Span<float> y)
    {
        Matrix.Multiply(x, tokens, y);
        if (Scale != 1f) TensorPrimitives.Multiply(y, Scale, y);
    }
}

/// <summary>One transformer block's weights; the sub-norms exist in BitNet models only.</summary>
public sealed record LayerWeights(
    float[] AttentionNorm, Projection Query, Projection Key, Projection Value, Projection Output, float[]? AttentionSubNorm,
    float[] FeedForwardNorm, Projection Gate, Projection Up, Projection Down, float[]? FeedForwardSubNorm);

/// <summary>
/// A LLaMA or BitNet b1.58 language model read from GGUF. Matrices stay in the memory-mapped file in their
/// own type (F32 … TQ1_0) and are multiplied in place; only the small norm vectors are copied. Create an
/// <see cref="InferenceSession"/> per conversation: it owns the KV cache.
/// </summary>
public sealed unsafe class LanguageModel : IDisposable
{
    private readonly GgufFile _file;

    public ModelConfig Config { get; }
    public Tokenizer Tokenizer { get; }
    public PackedMatrix TokenEmbedding { get; }
    public IReadOnlyList<LayerWeights> Layers { get; }
    public float[] OutputNorm { get; }
    /// <summary>The output head: output.weight, or the token embedding when the two are tied.</summary>
    public PackedMatrix OutputHead { get; }
    public string Path => _file.Path;
    /// <summary>Bytes of weights one generated token reads: every matrix once, plus one embedding row.</summary>
    public long BytesPerToken { get; }
    public long FileBytes { get; }

    private readonly bool _repackTernary;

    private LanguageModel(GgufFile file, bool repackTernary)
    {
        _file = file;
        _repackTernary = repackTernary;
        Config = ModelConfig.FromGguf(file);
        Tokenizer = Tokenizer.FromGguf(file);
        var c = Config;
        TokenEmbedding = Matrix("token_embd.weight", c.VocabSize, c.EmbeddingLength);
        OutputNorm = Vector("output_norm.weight", c.EmbeddingLength);
        OutputHead = file.Tensors.Any(t => t.Name == "output.weight") ? Matrix("output.weight", c.VocabSize, c.EmbeddingLength) : TokenEmbedding;
        bool bitnet = c.Architecture == Architecture.BitNet;
        var layers = new List<LayerWeights>();
        for (int i = 0; i < c.Layers; i++)
        {
            string p = $"blk.{i}.";
            layers.Add(new LayerWeights(
                Vector(p + "attn_norm.weight", c.EmbeddingLength),
                Project(p + "attn_q", c.EmbeddingLength, c.EmbeddingLength), Project(p + "attn_k", c.KvLength, c.EmbeddingLength),
                Project(p + "attn_v", c.KvLength, c.EmbeddingLength), Project(p + "attn_output", c.EmbeddingLength, c.EmbeddingLength),
                bitnet ? Vector(p + "attn_sub_norm.weight", c.EmbeddingLength) : null,
                Vector(p + "ffn_norm.weight", c.EmbeddingLength),
                Project(p + "ffn_gate", c.FeedForwardLength, c.EmbeddingLength), Project(p + "ffn_up", c.FeedForwardLength, c.EmbeddingLength),
                Project(p + "ffn_down", c.EmbeddingLength, c.FeedForwardLength),
                bitnet ? Vector(p + "ffn_sub_norm.weight", c.FeedForwardLength) : null));
        }
        Layers = layers;
        BytesPerToken = layers.Sum(l => new[] { l.Query, l.Key, l.Value, l.Output, l.Gate, l.Up, l.Down }.Sum(m => m.Matrix.ByteCount))
            + OutputHead.ByteCount + TokenEmbedding.RowBytes;
        FileBytes = new FileInfo(file.Path).Length;
    }

    /// <summary>
    /// Opens a GGUF model; the file stays mapped until the model is disposed. Ternary matrices (TQ2_0, TQ1_0)
    /// whose blocks share one scale are repacked into <see cref="TernaryMatrix"/>'s layout unless
    /// <paramref name="repackTernary"/> is false; every other matrix is used in place.
    /// </summary>
    public static LanguageModel Load(string path, bool repackTernary = true)
    {
        var file = GgufFile.Open(path);
        try { return new LanguageModel(file, repackTernary); }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public InferenceSession CreateSession(int? contextLength = null) => new(this, contextLength ?? Config.ContextLength);

    /// <summary>Writes token <paramref name="token"/>'s embedding into <paramref name="row"/>.</summary>
    public void Embed(int token, Span<float> row)
    {
        if ((uint)token >= (uint)Config.VocabSize) throw new ColdmindException($"Token id {token} is outside the vocabulary of {Config.VocabSize}.");
        TokenEmbedding.Traits.ToFloat!(TokenEmbedding.Row(token), row);
    }

    private GgufTensorInfo Tensor(string name, params long[] dims)
    {
        var t = _file.Tensors.FirstOrDefault(x => x.Name == name)
            ?? throw new ColdmindException($"'{_file.Path}' lacks tensor '{name}', which a {Config.Architecture} model needs.");
        if (!t.Dims.SequenceEqual(dims))
            throw new ColdmindException($"Tensor '{name}' in '{_file.Path}' has shape [{string.Join(", ", t.Dims)}]; the model's metadata needs [{string.Join(", ", dims)}].");
        return t;
    }

    /// <summary>A 2-D tensor in place in the file's mapping (ggml dims: columns first).</summary>
    private PackedMatrix Matrix(string name, int rows, int columns)
    {
        var tensor = Tensor(name, columns, rows);
        return PackedMatrix.InPlace(GgmlTypes.Traits(tensor.Type), rows, columns, _file.Pointer(tensor), _file);
    }

    private float[] Vector(string name, int length) => _file.ReadFloats(Tensor(name, length));

    private Projection Project(string name, int rows, int columns)
    {
        var scale = _file.Tensors.FirstOrDefault(t => t.Name == name + ".scale");
        var packed = Matrix(name + ".weight", rows, columns);
        var tensor = Tensor(name + ".weight", columns, rows);
        IWeightMatrix weights = new GgufMatrix(packed);
        if (_repackTernary && TernaryMatrix.Repack(packed.Traits.Type, _file.Pointer(tensor), rows, columns) is { } ternary)
        {
            weights = new RepackedTernary(ternary, packed.Traits.Name);
            _file.Release(tensor); // the repacked copy is used; the file's pages need not stay resident
        }
        return new Projection(weights, scale == null ? 1f : _file.ReadFloats(Tensor(scale.Name, 1))[0]);
    }

    public void Dispose()
    {
        foreach (var l in Layers)
            foreach (var p in new[] { l.Query, l.Key, l.Value, l.Output, l.Gate, l.Up, l.Down })
                (p.Matrix as IDisposable)?.Dispose();
        _file.Dispose();
    }
}
