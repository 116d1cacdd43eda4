using Xunit;
using Coldmind.Runtime.Lm;

namespace Coldmind.Tests;

public class RuntimeTests
{
    private static readonly SamplerOptions Greedy = new(Temperature: 0, RepeatPenalty: 1);

    [Fact]
    public void Stories260K_greedy_from_bos_reproduces_llama2_c_token_for_token()
    {
        using var model = LanguageModel.Load(SharedFiles.Require("models/stories260K/stories260K.f32.gguf"));
        string expected = File.ReadAllText(SharedFiles.Require("models/stories260K/sample_output_greedy.txt"));
        expected = expected[..expected.IndexOf("achieved tok/s", StringComparison.Ordinal)]; // run.c's speed line follows the text
        var session = model.CreateSession();
        // the sample is run.c's first 200 tokens after BOS, printed without the first one's leading space
        var result = Generator.Generate(session, model.Tokenizer, [model.Tokenizer.BosId], 200, new Sampler(Greedy));
        Assert.Equal(200, result.Tokens.Count);
        Assert.Equal(expected, result.Text[1..]);
    }
}
