using System.Text;
using Coldmind.Formats;

namespace Coldmind.Runtime.Lm;

/// <summary>
/// Text ↔ token ids from a GGUF vocabulary, as llama.cpp's llama_tokenize / llama_token_to_piece do.
/// User-defined tokens are always matched as wholes; control tokens (e.g. &lt;s&gt;, &lt;|eot_id|&gt;)
/// only when <c>parseSpecial</c> is set, so that text typed by a user cannot forge them.
/// </summary>
public abstract class Tokenizer
{
    protected readonly string[] Tokens;
    protected readonly TokenType[] Types;
    protected readonly Dictionary<string, int> Ids;

    public int BosId { get; }
    public int EosId { get; }
    public bool AddBos { get; }
    public int VocabSize => Tokens.Length;
    /// <summary>The chat template (tokenizer.chat_template), when the model has one.</summary>
    public string? ChatTemplate { get; }
    /// <summary>Tokens that end a generation: EOS and, when present, EOT.</summary>
    public IReadOnlySet<int> EndOfGeneration { get; }

    private readonly (string Text, int Id)[] _special; // longest first

    protected Tokenizer(GgufFile file, string[] tokens, TokenType[] types, int bos, int eos, bool addBos)
    {
        Tokens = tokens;
        Types = types;
        Ids = new Dictionary<string, int>(tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Length; i++) Ids.TryAdd(tokens[i], i);
        BosId = bos;
        EosId = eos;
        AddBos = addBos;
        ChatTemplate = file.Get("tokenizer.chat_template")?.Value as string;
        var end = new HashSet<int> { eos };
        if (file.Get("tokenizer.ggml.eot_token_id") is { } eot) end.Add((int)eot.AsInteger());
        EndOfGeneration = end;
        _special = Enumerable.Range(0, tokens.Length).Where(i => types[i] is TokenType.Control or TokenType.UserDefined && tokens[i].Length > 0)
            .Select(i => (tokens[i], i)).OrderByDescending(t => t.Item1.Length).ToArray();
    }

    /// <summary>Reads tokenizer.ggml.* and builds the tokenizer its model names.</summary>
    public static Tokenizer FromGguf(GgufFile file)
    {
        string model = file.Get("tokenizer.ggml.model")?.Value as string
            ?? throw new ColdmindException($"'{file.Path}' has no tokenizer (tokenizer.ggml.model).");
        var tokens = file.Get("tokenizer.ggml.tokens")?.Value as string[]
            ?? throw new ColdmindException($"'{file.Path}' has no tokenizer.ggml.tokens.");
        var types = file.Get("tokenizer.ggml.token_type")?.Value is int[] t && t.Length == tokens.Length
            ? t.Select(v => Enum.IsDefined((TokenType)v) ? (TokenType)v : TokenType.Normal).ToArray()
            : Enumerable.Repeat(TokenType.Normal, tokens.Length).ToArray();
        int Id(string key, int fallback)
        {
            long id = file.Get(key)?.AsInteger() ?? fallback;
            if (id < 0 || id >= tokens.Length) throw new ColdmindException($"'{file.Path}': {key} = {id} is outside the vocabulary of {tokens.Length}.");
            return (int)id;
        }
        bool Flag(string key, bool fallback) => file.Get(key)?.Value is bool b ? b : fallback;
        return model switch
        {
            "llama" => new SentencePieceTokenizer(file, tokens, types, Id("tokenizer.ggml.bos_token_id", 1), Id("tokenizer.ggml.eos_token_id", 2),
                Flag("tokenizer.ggml.add_bos_token", true), Flag("tokenizer.ggml.add_space_prefix", true),
                file.Get("tokenizer.ggml.scores")?.Value as float[] ?? new float[tokens.Length]),
            "gpt2" => new BytePairTokenizer(file, tokens, types, Id("tokenizer.ggml.bos_token_id", 0), Id("tokenizer.ggml.eos_token_id", 0),
                Flag("tokenizer.ggml.add_bos_token", false), file.Get("tokenizer.ggml.merges")?.Value as string[] ?? [],
                file.Get("tokenizer.ggml.pre")?.Value as string ?? "default"),
            _ => throw new ColdmindException($"'{file.Path}' uses the '{model}' tokenizer; Coldmind reads 'llama' (SentencePiece) and 'gpt2' (byte-level BPE)."),
        };
    }

    /// <summary>Token ids of <paramref name="text"/>, with BOS first when the model asks for it and <paramref name="addSpecial"/> is set.</summary>
    public List<int> Encode(string text, bool addSpecial = true, bool parseSpecial = false)
    {
        var output = new List<int>();
        if (addSpecial && AddBos) output.Add(BosId);
        bool previousSpecial = true;
        foreach (var (piece, id) in Partition(text, parseSpecial))
        {
            if (id >= 0) output.Add(id);
            else EncodeText(piece, previousSpecial, output);
            previousSpecial = id >= 0;
        }
        return output;
    }

    /// <summary>Splits text at special tokens: (token text, id) for a special token, (text, −1) for the text between.</summary>
    private List<(string Text, int Id)> Partition(string text, bool parseSpecial)
    {
        var fragments = new List<(string, int)>();
        if (text.Length == 0) return fragments;
        fragments.Add((text, -1));
        foreach (var (special, id) in _special)
        {
            if (!parseSpecial && Types[id] == TokenType.Control) continue;
            for (int f = 0; f < fragments.Count; f++)
            {
                var (piece, pieceId) = fragments[f];
                if (pieceId >= 0) continue;
                int at = piece.IndexOf(special, StringComparison.Ordinal);
                if (at < 0) continue;
                fragments.RemoveAt(f);
                var parts = new List<(string, int)>();
                if (at > 0) parts.Add((piece[..at], -1));
                parts.Add((special, id));
                if (at + special.Length < piece.Length) parts.Add((piece[(at + special.Length)..], -1));
                fragments.InsertRange(f, parts);
            }
        }
        return fragments;
    }

    protected abstract void EncodeText(string text, bool afterSpecial, List<int> output);

    /// <summary>The bytes token <paramref name="id"/> stands for (control tokens: none, unless <paramref name="special"/>).</summary>
    public abstract byte[] TokenBytes(int id, bool special = false);

    public string Decode(IEnumerable<int> ids, bool special = false)
    {
        var bytes = new List<byte>();
        foreach (int id in ids) bytes.AddRange(TokenBytes(id, special));
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    /// <summary>The token's text as stored in the vocabulary.</summary>
    public string TokenText(int id) => (uint)id < (uint)Tokens.Length ? Tokens[id] : throw new ColdmindException($"Token id {id} is outside the vocabulary of {Tokens.Length}.");

    protected bool IsSpecialHidden(int id, bool special) => !special && Types[id] is TokenType.Control or TokenType.Unknown or TokenType.Unused;
}

/// <summary>
/// Turns a stream of token ids into text pieces that are whole UTF-8 characters, holding back the bytes
/// of a character split across tokens (byte-fallback tokens, byte-level BPE).
/// </summary>
public sealed class StreamingDecoder(Tokenizer tokenizer)
{
    private readonly List<byte> _pending = [];

    public string Push(int id)
    {
        _pending.AddRange(tokenizer.TokenBytes(id));
        int complete = CompletePrefix(_pending);
        var text = Encoding.UTF8.GetString(_pending.GetRange(0, complete).ToArray());
        _pending.RemoveRange(0, complete);
        return text;
    }

    /// <summary>Whatever is left, invalid sequences replaced.</summary>
    public string Flush()
    {
        var text = Encoding.UTF8.GetString(_pending.ToArray());
        _pending.Clear();
        return text;
    }

    /// <summary>Length of the longest prefix that does not end inside a multi-byte character.</summary>
    private static int CompletePrefix(List<byte> b)
    {
        int n = b.Count;
        for (int back = 1; back <= Math.Min(3, n); back++)
        {
            byte c = b[n - back];
            if ((c & 0xC0) == 0x80) continue; // continuation byte: look further back for the lead
            int need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            return need > back ? n - back : n;
        }
        return n;
    }
}
