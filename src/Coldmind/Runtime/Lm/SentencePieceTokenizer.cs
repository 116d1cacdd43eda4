using System.Globalization;
using System.Text;
using Coldmind.Formats;

namespace Coldmind.Runtime.Lm;

/// <summary>
/// SentencePiece-style tokenizer (tokenizer.ggml.model = llama), as llama.cpp's llm_tokenizer_spm: spaces
/// become ▁ (and one is put in front of the text), the text is split into characters, and the adjacent pair
/// whose merge is the vocabulary token of highest score is merged until none is left; characters that no
/// token covers fall back to byte tokens &lt;0xXX&gt;.
/// </summary>
public sealed class SentencePieceTokenizer : Tokenizer
{
    private const char Space = '\u2581';
    private readonly float[] _scores;
    private readonly bool _addSpacePrefix;
    private readonly int[] _byteTokens = new int[256];

    internal SentencePieceTokenizer(GgufFile file, string[] tokens, TokenType[] types, int bos, int eos, bool addBos, bool addSpacePrefix, float[] scores)
        : base(file, tokens, types, bos, eos, addBos)
    {
        if (scores.Length != tokens.Length) throw new ColdmindException($"'{file.Path}': {scores.Length} token scores for {tokens.Length} tokens.");
        _scores = scores;
        _addSpacePrefix = addSpacePrefix;
        for (int b = 0; b < 256; b++)
            _byteTokens[b] = Ids.TryGetValue($"<0x{b:X2}>", out int id) ? id : -1;
    }

    protected override void EncodeText(string text, bool afterSpecial, List<int> output)
    {
        string escaped = ((_addSpacePrefix && afterSpecial ? " " : "") + text).Replace(' ', Space);
        // symbols: text elements as code points (a surrogate pair is one symbol), linked as in llama.cpp
        var starts = new List<int>();
        for (int i = 0; i < escaped.Length; i += char.IsSurrogatePair(escaped, i) ? 2 : 1) starts.Add(i);
        int n = starts.Count;
        var start = starts.ToArray();
        var length = new int[n];
        var prev = new int[n];
        var next = new int[n];
        for (int i = 0; i < n; i++)
        {
            length[i] = (i + 1 < n ? start[i + 1] : escaped.Length) - start[i];
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        var queue = new PriorityQueue<(int Left, int Right, int Size), (float Score, int Left)>(Comparer<(float Score, int Left)>.Create(
            (a, b) => a.Score != b.Score ? b.Score.CompareTo(a.Score) : a.Left.CompareTo(b.Left))); // highest score, then leftmost
        void TryAdd(int left, int right)
        {
            if (left < 0 || right < 0) return;
            string merged = escaped.Substring(start[left], length[left] + length[right]);
            if (!Ids.TryGetValue(merged, out int id)) return;
            queue.Enqueue((left, right, merged.Length), (_scores[id], left));
        }
        for (int i = 1; i < n; i++) TryAdd(i - 1, i);
        while (queue.TryDequeue(out var bigram, out _))
        {
            var (left, right, size) = bigram;
            if (length[left] == 0 || length[right] == 0 || length[left] + length[right] != size) continue; // stale
            length[left] += length[right];
            length[right] = 0;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            TryAdd(prev[left], left);
            TryAdd(left, next[left]);
        }
        // a merge only happens when its text is a token, so a symbol is a token or a single character
        for (int i = n > 0 ? 0 : -1; i != -1; i = next[i])
        {
            string symbol = escaped.Substring(start[i], length[i]);
            if (Ids.TryGetValue(symbol, out int id))
            {
                output.Add(id);
                continue;
            }
            foreach (byte b in Encoding.UTF8.GetBytes(symbol))
                output.Add(_byteTokens[b] >= 0 ? _byteTokens[b] : throw new ColdmindException($"The vocabulary has no token for '{symbol}' nor for its byte 0x{b:X2}."));
        }
    }

    public override byte[] TokenBytes(int id, bool special = false)
    {
        string text = TokenText(id);
        if (Types[id] == TokenType.Byte && text.Length == 6 && text.StartsWith("<0x", StringComparison.Ordinal))
            return [byte.Parse(text.AsSpan(3, 2), NumberStyles.HexNumber, CultureInfo.InvariantCulture)];
        if (IsSpecialHidden(id, special)) return [];
        return Encoding.UTF8.GetBytes(text.Replace(Space, ' '));
    }
}
