namespace Coldmind.Serving;

/// <summary>The speaker of one message in a conversation.</summary>
public enum ChatSpeaker { System, User, Assistant }

/// <summary>
/// How one conversation is written for a model family, recognised from the GGUF's tokenizer.chat_template as
/// llama.cpp does (ChatML, LLaMA-3, LLaMA-2, BitNet's), or a plain "User:/Assistant:" exchange when the model
/// has none. <see cref="User"/> ends with the assistant's header, so a prompt ending in a user turn asks for
/// the answer; <see cref="EndOfTurn"/> closes an answer the model ended itself.
/// </summary>
public sealed record ChatTemplate(string Name, Func<string, string> System, Func<string, string> User, string EndOfTurn)
{
    public static ChatTemplate Detect(string? template) => template switch
    {
        null => Plain,
        _ when Has(template, "<|im_start|>") => new("chatml",
            s => $"<|im_start|>system\n{s}<|im_end|>\n",
            u => $"<|im_start|>user\n{u}<|im_end|>\n<|im_start|>assistant\n",
            "<|im_end|>\n"),
        _ when Has(template, "<|start_header_id|>") => new("llama3",
            s => $"<|start_header_id|>system<|end_header_id|>\n\n{s}<|eot_id|>",
            u => $"<|start_header_id|>user<|end_header_id|>\n\n{u}<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n",
            "<|eot_id|>"),
        _ when Has(template, "[INST]") => new("llama2",
            s => $"[INST] <<SYS>>\n{s}\n<</SYS>>\n\n", u => $"[INST] {u} [/INST]", "</s>"),
        _ when Has(template, "Assistant: ") && Has(template, "<|eot_id|>") => new("bitnet",
            s => $"System: {s}<|eot_id|>", u => $"User: {u}<|eot_id|>Assistant: ", "<|eot_id|>"),
        _ => Plain,
    };

    private static bool Has(string template, string marker) => template.Contains(marker, StringComparison.Ordinal);

    public static readonly ChatTemplate Plain = new("plain", s => $"{s}\n\n", u => $"User: {u}\nAssistant:", "\n");

    /// <summary>
    /// The prompt for a whole conversation: what `coldmind chat` leaves in its KV cache after the same turns
    /// (each answer closed by <see cref="EndOfTurn"/>). The last message must be the user's.
    /// </summary>
    public string Render(IEnumerable<(ChatSpeaker Speaker, string Text)> messages)
    {
        var prompt = new System.Text.StringBuilder();
        ChatSpeaker? last = null;
        foreach (var (speaker, text) in messages)
        {
            prompt.Append(speaker switch
            {
                ChatSpeaker.System => System(text),
                ChatSpeaker.User => User(text),
                _ => text + EndOfTurn,
            });
            last = speaker;
        }
        if (last != ChatSpeaker.User)
            throw new ColdmindException("The last message of a conversation must be the user's.");
        return prompt.ToString();
    }
}
