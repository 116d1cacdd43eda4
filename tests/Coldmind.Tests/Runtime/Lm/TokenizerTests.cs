using Xunit;
using Coldmind.Formats;
using Coldmind.Runtime.Lm;

namespace Coldmind.Tests;

public class TokenizerTests
{
    /// <summary>llama.cpp's tokenizer test vectors: texts split by __ggml_vocab_test__, one line of ids per text.</summary>
    private static (string Text, int[] Ids)[] Vectors(string vocab)
    {
        var inputs = File.ReadAllText(SharedFiles.Require($"data/tokenizer-vectors/{vocab}.inp")).Split("\n__ggml_vocab_test__\n");
        var outputs = File.ReadAllLines(SharedFiles.Require($"data/tokenizer-vectors/{vocab}.out"));
        Assert.True(inputs.Length - 1 <= outputs.Length, $"{inputs.Length} texts, {outputs.Length} id lines");
        return inputs.Take(outputs.Length).Select((text, i) =>
            (text, outputs[i].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray())).ToArray();
    }

    [Theory]
    [InlineData("ggml-vocab-llama-spm.gguf")]
    [InlineData("ggml-vocab-phi-3.gguf")]
    [InlineData("ggml-vocab-gpt-2.gguf")]
    public void Ids_equal_llama_cpp_for_every_test_text(string vocab)
    {
        using var file = GgufFile.Open(SharedFiles.Require($"data/tokenizer-vectors/{vocab}"));
        var tokenizer = Tokenizer.FromGguf(file);
        var failures = new List<string>();
        foreach (var (text, expected) in Vectors(vocab))
        {
            var ids = tokenizer.Encode(text, addSpecial: false);
            if (!ids.SequenceEqual(expected)) failures.Add($"'{text}': [{string.Join(' ', ids)}] vs [{string.Join(' ', expected)}]");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Theory]
    [InlineData("ggml-vocab-llama-spm.gguf")]
    [InlineData("ggml-vocab-gpt-2.gguf")]
    public void Decoding_gives_back_the_text(string vocab)
    {
        using var file = GgufFile.Open(SharedFiles.Require($"data/tokenizer-vectors/{vocab}"));
        var tokenizer = Tokenizer.FromGguf(file);
        foreach (var (text, _) in Vectors(vocab))
        {
            var ids = tokenizer.Encode(text, addSpecial: false);
            string decoded = tokenizer.Decode(ids);
            // SentencePiece puts a space in front of the text; the decoder keeps it, as llama.cpp's does
            Assert.Equal(text, tokenizer is SentencePieceTokenizer && decoded.StartsWith(' ') ? decoded[1..] : decoded);
            var stream = new StreamingDecoder(tokenizer);
            string streamed = string.Concat(ids.Select(stream.Push)) + stream.Flush();
            Assert.Equal(decoded, streamed);
        }
    }
}
