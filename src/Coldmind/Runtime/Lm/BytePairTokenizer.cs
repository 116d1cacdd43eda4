using System.Text.RegularExpressions;
using System.Text;
using Coldmind.Formats;

namespace Coldmind.Runtime.Lm;

/// <summary>
/// Byte-level BPE (tokenizer.ggml.model = gpt2), as llama.cpp's llm_tokenizer_bpe: the text is split into
/// words by the pre-tokenizer regex its model was trained with (tokenizer.ggml.pre), each word's UTF-8 bytes
/// are mapped to printable characters (GPT-2's bytes_to_unicode), and the adjacent pair of lowest merge rank
/// is merged until no ranked pair is left.
/// </summary>
public sealed partial class BytePairTokenizer : Tokenizer
{
    // GPT-2's pattern, with the trailing \s+ that its reference implementation applies after \s+(?!\S)
    [GeneratedRegex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.CultureInvariant)]
    private static partial Regex Gpt2Words();

    // LLaMA-3's pattern (BitNet b1.58 2B4T uses its tokenizer): case-insensitive contractions, digits in threes
    [GeneratedRegex(@"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+", RegexOptions.CultureInvariant)]
    private static partial Regex Llama3Words();

    private static readonly char[] ByteToChar = BuildByteMap();
    private static readonly Dictionary<char, byte> CharToByte = Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    private readonly Dictionary<(string, string), int> _ranks;
    private readonly Regex _words;
    private readonly bool _ignoreMerges;

    internal BytePairTokenizer(GgufFile file, string[] tokens, TokenType[] types, int bos, int eos, bool addBos, string[] merges, string pre)
        : base(file, tokens, types, bos, eos, addBos)
    {
        _ranks = new Dictionary<(string, string), int>(merges.Length);
        for (int i = 0; i < merges.Length; i++)
        {
            int space = merges[i].IndexOf(' ', 1);
            if (space < 0) throw new ColdmindException($"'{file.Path}': merge {i} ('{merges[i]}') is not two symbols separated by a space.");
            _ranks.TryAdd((merges[i][..space], merges[i][(space + 1)..]), i);
        }
        (_words, _ignoreMerges) = pre switch
        {
            "default" or "gpt-2" or "gpt2" or "olmo" or "mpt" => (Gpt2Words(), false),
            "llama-bpe" or "llama3" or "dbrx" or "smaug-bpe" => (Llama3Words(), true),
            _ => throw new ColdmindException($"'{file.Path}' uses the '{pre}' pre-tokenizer; Coldmind knows gpt-2 (default) and llama-bpe."),
        };
    }

    /// <summary>GPT-2's bytes_to_unicode: printable bytes stand for themselves, the rest for U+0100 onward.</summary>
    private static char[] BuildByteMap()
    {
        var map = new char[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
            map[b] = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF ? (char)b : (char)(256 + extra++);
        return map;
    }

    protected override void EncodeText(string text, bool afterSpecial, List<int> output)
    {
        foreach (Match word in _words.Matches(text))
        {
            var encoded = new StringBuilder();
            foreach (byte b in Encoding.UTF8.GetBytes(word.Value)) encoded.Append(ByteToChar[b]);
            string w = encoded.ToString();
            if (_ignoreMerges && Ids.TryGetValue(w, out int whole))
            {
                output.Add(whole);
                continue;
            }
            Merge(w, output);
        }
    }

    /// <summary>Merges the lowest-ranked adjacent pair (leftmost on ties) until no pair has a rank.</summary>
    private void Merge(string word, List<int> output)
    {
        var symbols = new List<string>(word.Length);
        for (int i = 0; i < word.Length; i++) symbols.Add(word[i].ToString());
        while (symbols.Count > 1)
        {
            int best = -1, bestRank = int.MaxValue;
            for (int i = 0; i + 1 < symbols.Count; i++)
                if (_ranks.TryGetValue((symbols[i], symbols[i + 1]), out int rank) && rank < bestRank) (best, bestRank) = (i, rank);
            if (best < 0) break;
            symbols[best] += symbols[best + 1];
            symbols.RemoveAt(best + 1);
        }
        foreach (var s in symbols)
        {
            if (Ids.TryGetValue(s, out int id)) output.Add(id);
            else
                foreach (char c in s)
                    output.Add(Ids.TryGetValue(c.ToString(), out int single) ? single : throw new ColdmindException($"The vocabulary has no token for '{s}' nor for '{c}'."));
        }
    }

    public override byte[] TokenBytes(int id, bool special = false)
    {
        string text = TokenText(id);
        if (IsSpecialHidden(id, special)) return [];
        if (Types[id] is TokenType.Control or TokenType.UserDefined) return Encoding.UTF8.GetBytes(text);
        var bytes = new byte[text.Length];
        for (int i = 0; i < text.Length; i++)
            bytes[i] = CharToByte.TryGetValue(text[i], out byte b) ? b : (byte)'?';
        return bytes;
    }
}
