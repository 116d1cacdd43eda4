using Coldmind.Formats;
using Coldmind.Nn;
using Coldmind.Quantization;
using Coldmind.Runtime.Lm;
using Coldmind.Tensors;

namespace Coldmind.LmTraining;

/// <summary>
/// Writes a trained <see cref="TinyLm"/> as a GGUF of the bitnet architecture, which Coldmind's runtime and
/// llama.cpp load: parameter names are already GGUF's. Ternary projections are ternarized as in training
/// (absmean scale, trits) and stored as TQ2_0, whose per-block scale then holds the tensor's scale exactly
/// up to f16 rounding; float projections, norms and the embedding stay F32. llama.cpp's bitnet graph uses a
/// SiLU-gated FFN: a model trained with SiLU is marked coldmind.ffn_activation = silu so that Coldmind does
/// the same, and then both runtimes compute the same function; with relu² (2B4T's default here) only Coldmind does.
/// <see cref="Read"/> is the way back, for fine-tuning a written model: the latent weights ternary projections
/// were rounded from are gone, so they come back as the latent weights that round to the same scale × trits.
/// </summary>
public static class TinyLmExport
{
    public static void Write(TinyLm model, CharacterVocabulary vocabulary, string path, string name)
    {
        var c = model.Config;
        if (vocabulary.Size != c.Vocab) throw new ColdmindException($"The vocabulary has {vocabulary.Size} tokens, the model {c.Vocab}.");
        var w = new GgufWriter();
        w.Set("general.architecture", GgufValue.Of("bitnet"));
        w.Set("general.name", GgufValue.Of(name));
        w.Set("general.alignment", GgufValue.Of(32u));
        w.Set("general.quantization_version", GgufValue.Of(2u));
        w.Set("general.file_type", GgufValue.Of(c.Ternary ? 37u : 0u)); // MOSTLY_TQ2_0 or ALL_F32
        w.Set("bitnet.context_length", GgufValue.Of(2048u));
        w.Set("bitnet.embedding_length", GgufValue.Of((uint)c.Dim));
        w.Set("bitnet.block_count", GgufValue.Of((uint)c.Layers));
        w.Set("bitnet.feed_forward_length", GgufValue.Of((uint)c.FfnDim));
        w.Set("bitnet.attention.head_count", GgufValue.Of((uint)c.Heads));
        w.Set("bitnet.attention.head_count_kv", GgufValue.Of((uint)c.KvHeads));
        w.Set("bitnet.rope.dimension_count", GgufValue.Of((uint)c.HeadDim));
        w.Set("bitnet.rope.freq_base", GgufValue.Of(c.RopeTheta));
        w.Set("bitnet.attention.layer_norm_rms_epsilon", GgufValue.Of(c.NormEps));
        w.Set("bitnet.vocab_size", GgufValue.Of((uint)c.Vocab));
        if (c.FfnActivation == Activation.Silu) w.Set(ModelConfig.FfnActivationKey, GgufValue.Of("silu"));
        vocabulary.WriteTo(w);
        var f32 = GgmlTypes.Traits(GgmlType.F32);
        var tq2 = GgmlTypes.Traits(GgmlType.TQ2_0);
        foreach (var (tensorName, t) in model.NamedParameters())
        {
            var values = t.ToArray();
            long[] dims = t.Shape.Reverse().Select(d => (long)d).ToArray(); // ggml order: row length first
            bool ternary = c.Ternary && t.Rank == 2 && tensorName.StartsWith("blk.", StringComparison.Ordinal);
            if (ternary)
            {
                var trits = new sbyte[values.Length];
                float scale = BitNetQuantizer.Ternarize(values, trits);
                w.AddTensor(tensorName, dims, GgmlType.TQ2_0, tq2.Quantize(trits.Select(v => v * scale).ToArray()));
            }
            else w.AddTensor(tensorName, dims, GgmlType.F32, f32.Quantize(values));
        }
        w.Write(path);
    }

    /// <summary>A model written by <see cref="Write"/> (or merged from such models), ready to train further, with its vocabulary.</summary>
    public static (TinyLm Model, CharacterVocabulary Vocabulary) Read(string path)
    {
        using var file = GgufFile.Open(path);
        var meta = file.Metadata.ToList();
        string origin = $"'{Path.GetFileName(path)}'";
        var model = new TinyLm(ConfigOf(meta, file.Tensors.Select(t => (t.Name, t.Type)), origin), new Rng(0));
        model.LoadState(file.Tensors.ToDictionary(t => t.Name, t => Tensor.FromArray(IsTernary(t.Type) ? BitNetQuantizer.LatentOf(file.ReadFloats(t)) : file.ReadFloats(t),
            t.Dims.Reverse().Select(d => checked((int)d)).ToArray())));
        var tokens = meta.FirstOrDefault(kv => kv.Key == "tokenizer.ggml.tokens").Value?.Value as string[]
            ?? throw new ColdmindException($"{origin} has no vocabulary (tokenizer.ggml.tokens).");
        return (model, CharacterVocabulary.FromTokens(tokens, origin));
    }

    public static bool IsTernary(GgmlType type) => type is GgmlType.TQ1_0 or GgmlType.TQ2_0;

    /// <summary>
    /// The shape of a bitnet-architecture model written by `coldmind train-lm`, from its metadata; ternary when its
    /// block tensors are stored as TQ1_0 / TQ2_0.
    /// </summary>
    public static TinyLmConfig ConfigOf(IReadOnlyList<KeyValuePair<string, GgufValue>> meta, IEnumerable<(string Name, GgmlType Type)> tensors, string origin)
    {
        GgufValue Get(string key) => meta.FirstOrDefault(kv => kv.Key == key).Value
            ?? throw new ColdmindException($"{origin} has no '{key}'; only models written by `coldmind train-lm` (bitnet architecture) are read.");
        if (Get("general.architecture").ToString() != "bitnet")
            throw new ColdmindException($"{origin} is a {Get("general.architecture")} model; only models written by `coldmind train-lm` (bitnet) are read.");
        bool ternary = tensors.Any(t => t.Name.StartsWith("blk.", StringComparison.Ordinal) && IsTernary(t.Type));
        var activation = meta.FirstOrDefault(kv => kv.Key == ModelConfig.FfnActivationKey).Value?.ToString() == "silu" ? Activation.Silu : Activation.SquaredRelu;
        return new TinyLmConfig((int)((Array)Get("tokenizer.ggml.tokens").Value).Length, (int)Get("bitnet.embedding_length").AsInteger(), (int)Get("bitnet.block_count").AsInteger(),
            (int)Get("bitnet.attention.head_count").AsInteger(), (int)Get("bitnet.attention.head_count_kv").AsInteger(), (int)Get("bitnet.feed_forward_length").AsInteger(),
            ternary, activation, (float)Get("bitnet.rope.freq_base").Value, (float)Get("bitnet.attention.layer_norm_rms_epsilon").Value);
    }
}
