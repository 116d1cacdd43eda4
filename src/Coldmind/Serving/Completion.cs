using Coldmind.Cost;
using Coldmind.LmTraining;
using Coldmind.Runtime.Classifier;
using Coldmind.Runtime.Lm;
using Coldmind.Shrink;

namespace Coldmind.Serving;

/// <summary>Bounds and defaults of a <see cref="ColdmindChatClient"/>.</summary>
public sealed record ChatClientSettings
{
    /// <summary>Generations that run at once, each in its own KV cache; the others wait.</summary>
    public int Parallel { get; init; } = 1;
    /// <summary>Requests that may wait for a slot; more are refused (<see cref="ServerBusyException"/>).</summary>
    public int MaxQueue { get; init; } = 64;
    /// <summary>Context of each slot in tokens (default: the model's).</summary>
    public int? ContextLength { get; init; }
    /// <summary>Most prompt tokens one request may bring.</summary>
    public int MaxPromptTokens { get; init; } = 4096;
    /// <summary>Most tokens one request may ask for; also the default when it asks for none.</summary>
    public int MaxTokens { get; init; } = 512;
    /// <summary>Sampling when a request does not say (its seed is drawn per request unless one is given).</summary>
    public SamplerOptions Sampling { get; init; } = new(Temperature: 0.8f, TopK: 40, TopP: 0.95f, RepeatPenalty: 1f);
    /// <summary>The model's name in responses (default: the file name without .gguf).</summary>
    public string? ModelId { get; init; }
    /// <summary>
    /// The device whose joules the counters estimate (<see cref="CostModel"/>: a single-token step at a context of
    /// 256, priced for every prompt and generated token, so an upper bound for prompts evaluated as a batch); none: no
    /// estimate.
    /// </summary>
    public DeviceProfile? Device { get; init; }
}

/// <summary>One request's generation settings.</summary>
public sealed record CompletionOptions(SamplerOptions Sampling, int MaxTokens, IReadOnlyList<string> Stop);

/// <summary>
/// How a generation ended: <c>stop</c> (end of text or a stop sequence) or <c>length</c> (max tokens, full context);
/// its token counts, the seconds to its first piece and the speed of its single-token steps.
/// </summary>
public sealed record CompletionResult(string FinishReason, int PromptTokens, int CompletionTokens,
    double TimeToFirstTokenSeconds, double GenerationTokensPerSecond);

/// <summary>A piece of generated text, or (last) the <see cref="Result"/> with an empty text.</summary>
public sealed record CompletionChunk(string Text, CompletionResult? Result = null);
