using System.Globalization;
using Coldmind.Formats;
using Coldmind.Models;

namespace Coldmind.Runtime.Lm;

/// <summary>The transformer families the runtime runs, by their GGUF general.architecture.</summary>
public enum Architecture
{
    /// <summary>LLaMA: RMSNorm, RoPE, grouped-query attention, SiLU-gated FFN.</summary>
    Llama,
    /// <summary>
    /// BitNet b1.58 2B4T: LLaMA's layout with ternary linear weights (optionally a per-tensor scale tensor),
    /// sub-norms before the attention output and FFN down projections, a squared-ReLU gated FFN, tied embeddings.
    /// </summary>
    BitNet,
}

/// <summary>A model's hyper-parameters, read from the GGUF metadata under its architecture's prefix.</summary>
public sealed record ModelConfig(
    Architecture Architecture, int EmbeddingLength, int Layers, int Heads, int KvHeads, int FeedForwardLength,
    int ContextLength, int VocabSize, int RopeDimensions, float RopeBase, float RmsEpsilon, bool SiluFeedForward)
{
    /// <summary>Coldmind's mark on a bitnet-architecture file whose FFN uses SiLU (as llama.cpp's bitnet graph) instead of 2B4T's relu².</summary>
    public const string FfnActivationKey = Provenance.FfnActivationKey;

    public int HeadDim => EmbeddingLength / Heads;
    /// <summary>RoPE on the halves (i, i + rot/2) as llama.cpp does for bitnet (NEOX), or on adjacent pairs for llama (NORM).</summary>
    public bool RopeNeox => Architecture == Architecture.BitNet;
    public int KvLength => KvHeads * HeadDim;

    public static ModelConfig FromGguf(GgufFile file)
    {
        string arch = file.Get("general.architecture")?.Value as string
            ?? throw new ColdmindException($"'{file.Path}' has no general.architecture; it is not a language model.");
        var architecture = arch switch
        {
            "llama" => Architecture.Llama,
            "bitnet" => Architecture.BitNet,
            _ => throw new ColdmindException($"'{file.Path}' is a '{arch}' model; Coldmind runs 'llama' and 'bitnet'."),
        };
        int Int(string key, int? fallback = null)
        {
            var v = file.Get($"{arch}.{key}");
            if (v == null) return fallback ?? throw new ColdmindException($"'{file.Path}' lacks {arch}.{key}.");
            long n = v.AsInteger();
            if (n <= 0 || n > int.MaxValue) throw new ColdmindException($"'{file.Path}': {arch}.{key} = {n} is out of range.");
            return (int)n;
        }
        float Float(string key, float fallback)
        {
            var v = file.Get($"{arch}.{key}");
            return v == null ? fallback : Convert.ToSingle(v.Value, CultureInfo.InvariantCulture);
        }
        int embd = Int("embedding_length"), heads = Int("attention.head_count");
        var tokens = file.Get("tokenizer.ggml.tokens")?.Value as Array;
        var embedding = file.Tensors.FirstOrDefault(t => t.Name == "token_embd.weight")
            ?? throw new ColdmindException($"'{file.Path}' has no token_embd.weight tensor.");
        var config = new ModelConfig(architecture, embd, Int("block_count"), heads, Int("attention.head_count_kv", heads), Int("feed_forward_length"),
            Int("context_length", 2048), Int("vocab_size", tokens?.Length ?? (int)embedding.Dims[^1]), Int("rope.dimension_count", embd / heads),
            Float("rope.freq_base", 10000f), Float("attention.layer_norm_rms_epsilon", 1e-5f),
            architecture == Architecture.Llama || file.Get(FfnActivationKey)?.Value as string == "silu");
        if (embd % heads != 0 || heads % config.KvHeads != 0 || config.RopeDimensions > config.HeadDim || config.RopeDimensions % 2 != 0)
            throw new ColdmindException($"'{file.Path}': {heads} heads, {config.KvHeads} KV heads, {embd} embedding and {config.RopeDimensions} rotary dimensions do not fit together.");
        return config;
    }
}
