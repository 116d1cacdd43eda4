using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;
using Xunit;

namespace Coldmind.Tests;

/// <summary>OpenAI's frequency and presence penalties: score − count × frequency − presence, over the window.
/// </summary>
public class SamplerPenaltyTests
{
    private static int Greedy(float frequency, float presence, int window, params int[] history) =>
        new Sampler(new SamplerOptions(Temperature: 0, RepeatPenalty: 1, RepeatWindow: window,
            FrequencyPenalty: frequency, PresencePenalty: presence))
            .Sample([2f, 1.5f, 0f], history);

    [Fact]
    public void Penalties_lower_tokens_by_their_count_and_presence_within_the_window()
    {
        Assert.Equal(0, Greedy(0, 0, 64, 0, 0));
        Assert.Equal(1, Greedy(0.3f, 0, 64, 0, 0));      // 2 − 2 × 0.3 = 1.4 < 1.5
        Assert.Equal(0, Greedy(0.3f, 0, 64, 0));         // 2 − 0.3 = 1.7 > 1.5
        Assert.Equal(1, Greedy(0, 0.6f, 64, 0));         // 2 − 0.6 = 1.4 < 1.5
        Assert.Equal(0, Greedy(0.3f, 0, 1, 0, 0, 2));    // only the last token is in the window
        Assert.Equal(1, Greedy(-0.5f, 0, 64, 1, 1));     // negative values favour repeats: 1.5 + 2 × 0.5 = 2.5 > 2
    }

    [Fact]
    public void Penalties_outside_openai_range_are_refused()
    {
        Assert.Throws<ColdmindException>(() => new Sampler(new SamplerOptions(FrequencyPenalty: 2.5f)));
        Assert.Throws<ColdmindException>(() => new Sampler(new SamplerOptions(PresencePenalty: float.NaN)));
    }
}
