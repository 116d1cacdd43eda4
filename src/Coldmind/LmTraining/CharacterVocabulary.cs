using System.Text;
using Coldmind.Formats;

namespace Coldmind.LmTraining;

/// <summary>
/// A character-level vocabulary written as a SentencePiece-style GGUF tokenizer, so llama.cpp and
/// <c>Runtime.Lm.SentencePieceTokenizer</c> read it: &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, the 256 byte tokens
/// &lt;0xXX&gt; (for characters the training text did not have), then every character of the text, with
/// space as ▁. No token is longer than one character, so tokenizing is a character lookup.
/// </summary>
public sealed class CharacterVocabulary
{
    private const int Base = 3 + 256;
    private readonly Dictionary<Rune, int> _ids = [];

    public IReadOnlyList<string> Tokens { get; }
    public int Size => Tokens.Count;

    public CharacterVocabulary(string text)
    {
        var runes = text.EnumerateRunes().Distinct().Order().ToArray();
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        for (int b = 0; b < 256; b++) tokens.Add($"<0x{b:X2}>");
        foreach (var r in runes)
        {
            _ids[r] = tokens.Count;
            tokens.Add(r.Value == ' ' ? "\u2581" : r.ToString());
        }
        Tokens = tokens;
    }

    private CharacterVocabulary(List<string> tokens, Dictionary<Rune, int> ids) => (Tokens, _ids) = (tokens, ids);

    /// <summary>
    /// The vocabulary a file was written with (its tokenizer.ggml.tokens), so text is encoded with that file's ids;
    /// only a vocabulary of this class's layout (3 specials, 256 bytes, then characters) is accepted.
    /// </summary>
    public static CharacterVocabulary FromTokens(IReadOnlyList<string> tokens, string origin)
    {
        if (tokens.Count < Base || tokens[0] != "<unk>" || tokens[3] != "<0x00>" || tokens[Base - 1] != "<0xFF>")
            throw new ColdmindException($"{origin} does not have a character vocabulary written by `coldmind train-lm`.");
        var ids = new Dictionary<Rune, int>();
        for (int i = Base; i < tokens.Count; i++)
        {
            string t = tokens[i] == "\u2581" ? " " : tokens[i];
            if (!Rune.TryGetRuneAt(t, 0, out var rune) || rune.Utf16SequenceLength != t.Length)
                throw new ColdmindException($"{origin}: token {i} ('{tokens[i]}') is not one character.");
            ids[rune] = i;
        }
        return new CharacterVocabulary([.. tokens], ids);
    }

    /// <summary>Token ids of the text, as the SentencePiece tokenizer of the exported file gives them.</summary>
    public int[] Encode(string text)
    {
        var ids = new List<int>(text.Length);
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var r in text.EnumerateRunes())
        {
            if (_ids.TryGetValue(r, out int id)) ids.Add(id);
            else
            {
                int n = r.EncodeToUtf8(utf8);
                for (int i = 0; i < n; i++) ids.Add(3 + utf8[i]);
            }
        }
        return ids.ToArray();
    }

    /// <summary>tokenizer.ggml.* keys: no BOS and no space prefix, as the model was trained on raw text.</summary>
    public void WriteTo(GgufWriter w)
    {
        w.Set("tokenizer.ggml.model", GgufValue.Of("llama"));
        w.Set("tokenizer.ggml.tokens", GgufValue.Array(GgufValueType.String, Tokens.ToArray()));
        w.Set("tokenizer.ggml.scores", GgufValue.Array(GgufValueType.Float32, new float[Size]));
        w.Set("tokenizer.ggml.token_type", GgufValue.Array(GgufValueType.Int32,
            Enumerable.Range(0, Size).Select(i => (int)(i == 0 ? TokenType.Unknown : i < 3 ? TokenType.Control : i < Base ? TokenType.Byte : TokenType.Normal)).ToArray()));
        w.Set("tokenizer.ggml.bos_token_id", GgufValue.Of(1u));
        w.Set("tokenizer.ggml.eos_token_id", GgufValue.Of(2u));
        w.Set("tokenizer.ggml.unknown_token_id", GgufValue.Of(0u));
        w.Set("tokenizer.ggml.add_bos_token", GgufValue.Of(false));
        w.Set("tokenizer.ggml.add_space_prefix", GgufValue.Of(false));
    }
}
