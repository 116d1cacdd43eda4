using System.Diagnostics;

namespace Coldmind.Runtime.Lm;

/// <summary>What a generation produced and how fast: prompt tokens/s over the prompt batch, generation tokens/s over the single-token steps.</summary>
public sealed record GenerationResult(IReadOnlyList<int> Prompt, IReadOnlyList<int> Tokens, string Text, double PromptSeconds, int GenerationSteps, double GenerationSeconds, string StopReason)
{
    public double PromptTokensPerSecond => PromptSeconds > 0 ? Prompt.Count / PromptSeconds : 0;
    public double GenerationTokensPerSecond => GenerationSeconds > 0 ? GenerationSteps / GenerationSeconds : 0;
}

public static class Generator
{
    /// <summary>
    /// Evaluates <paramref name="prompt"/> as one batch, then samples up to <paramref name="maxTokens"/> tokens one at a
    /// time, streaming their text to <paramref name="onText"/>. Stops at an end-of-generation token, a full context,
    /// or cancellation (Ctrl-C), keeping what was generated.
    /// </summary>
    public static GenerationResult Generate(InferenceSession session, Tokenizer tokenizer, IReadOnlyList<int> prompt, int maxTokens, Sampler sampler,
        Action<string>? onText = null, CancellationToken cancel = default)
    {
        if (prompt.Count == 0) throw new ColdmindException("The prompt has no tokens; give some text (or let the model add BOS).");
        if (maxTokens < 0) throw new ColdmindException($"-n must not be negative, got {maxTokens}.");
        if (session.Position + prompt.Count > session.ContextLength)
            throw new ColdmindException($"The prompt has {prompt.Count} tokens and {session.Position} are already in the context of {session.ContextLength}; it does not fit.");
        var clock = Stopwatch.StartNew();
        var logits = session.Evaluate(prompt.ToArray());
        double promptSeconds = clock.Elapsed.TotalSeconds;
        var history = new List<int>(prompt);
        var generated = new List<int>();
        var decoder = new StreamingDecoder(tokenizer);
        var text = new System.Text.StringBuilder();
        int steps = 0;
        double generationSeconds = 0;
        string reason = "length";
        while (generated.Count < maxTokens)
        {
            if (cancel.IsCancellationRequested) { reason = "cancelled"; break; }
            int token = sampler.Sample(logits, history);
            if (tokenizer.EndOfGeneration.Contains(token)) { reason = "end of text"; break; }
            generated.Add(token);
            history.Add(token);
            string piece = decoder.Push(token);
            text.Append(piece);
            onText?.Invoke(piece);
            if (generated.Count == maxTokens) break;
            if (cancel.IsCancellationRequested) { reason = "cancelled"; break; } // e.g. a stop sequence seen in onText: no wasted step
            if (session.Position >= session.ContextLength) { reason = "context full"; break; }
            clock.Restart();
            logits = session.Evaluate([token]);
            generationSeconds += clock.Elapsed.TotalSeconds;
            steps++;
        }
        string rest = decoder.Flush();
        text.Append(rest);
        if (rest.Length > 0) onText?.Invoke(rest);
        return new GenerationResult(prompt, generated, text.ToString(), promptSeconds, steps, generationSeconds, reason);
    }
}
