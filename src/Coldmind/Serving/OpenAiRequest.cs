using System.Text.Json;
using Microsoft.Extensions.AI;

namespace Coldmind.Serving;

/// <summary>
/// The body of an OpenAI <c>/v1/chat/completions</c> or <c>/v1/completions</c> request, read field by field:
/// OpenAI's sampling fields, llama.cpp's extensions (<c>top_k</c>, <c>repeat_penalty</c>, <c>repeat_last_n</c>),
/// streaming. Fields this server cannot honour (n &gt; 1, logprobs, tools, echo) are refused by name; others that do
/// not change the text (user, metadata, model) are ignored. Every refusal is a <see cref="ColdmindException"/>.
/// </summary>
internal sealed record OpenAiRequest(List<ChatMessage>? Messages, string? Prompt, bool Stream, bool IncludeUsage,
    ChatOptions Options)
{
    public static OpenAiRequest Parse(byte[] body, bool chat)
    {
        JsonDocument document;
        try { document = JsonDocument.Parse(body); }
        catch (JsonException e) { throw new ColdmindException($"The body is not valid JSON: {e.Message}"); }
        using (document) return Read(document.RootElement, chat);
    }

    private static OpenAiRequest Read(JsonElement root, bool chat)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new ColdmindException("The body must be a JSON object.");
        var options = new ChatOptions { AdditionalProperties = [] };
        var extra = options.AdditionalProperties;
        JsonElement v;
        bool Has(string name, out JsonElement value) =>
            root.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

        if (Has("temperature", out v))
        {
            float t = Number("temperature", v);
            options.Temperature = t is >= 0 and <= 2
                ? t : throw new ColdmindException($"'temperature' must be in [0, 2], got {t}.");
        }
        if (Has("top_p", out v)) options.TopP = Number("top_p", v);
        if (Has("top_k", out v)) options.TopK = Whole("top_k", v);
        if (Has("frequency_penalty", out v)) options.FrequencyPenalty = Number("frequency_penalty", v);
        if (Has("presence_penalty", out v)) options.PresencePenalty = Number("presence_penalty", v);
        if (Has("repeat_penalty", out v)) extra["repeat_penalty"] = Number("repeat_penalty", v);
        if (Has("repeat_last_n", out v)) extra["repeat_last_n"] = (float)Whole("repeat_last_n", v);
        if (Has("seed", out v))
            options.Seed = v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long seed)
                ? seed : throw new ColdmindException("'seed' must be a whole number.");
        foreach (var name in chat ? new[] { "max_completion_tokens", "max_tokens" } : ["max_tokens"])
            if (Has(name, out v))
            {
                options.MaxOutputTokens = Whole(name, v);
                break;
            }
        if (!chat) options.MaxOutputTokens ??= 16; // OpenAI's default for completions
        if (Has("stop", out v))
            options.StopSequences = v.ValueKind == JsonValueKind.String ? [v.GetString()!]
                : v.ValueKind == JsonValueKind.Array && v.EnumerateArray().All(s => s.ValueKind == JsonValueKind.String)
                    ? v.EnumerateArray().Select(s => s.GetString()!).ToList()
                    : throw new ColdmindException("'stop' must be a string or an array of strings.");
        if (Has("n", out v) && Whole("n", v) != 1)
            throw new ColdmindException("'n' must be 1: this server returns one choice.");
        foreach (var name in new[] { "logprobs", "echo" })
            if (Has(name, out v) && v.ValueKind != JsonValueKind.False)
                throw new ColdmindException($"'{name}' is not supported.");
        if (Has("suffix", out _)) throw new ColdmindException("'suffix' is not supported.");
        if (Has("tools", out v) && v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0)
            throw new ColdmindException("'tools' are not supported by this model.");
        if (Has("response_format", out v) && v.TryGetProperty("type", out var type) && type.GetString() != "text")
            throw new ColdmindException("Only the 'text' response_format is supported.");
        bool stream = Has("stream", out v) && (v.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? v.GetBoolean() : throw new ColdmindException("'stream' must be true or false."));
        bool usage = Has("stream_options", out v) && v.ValueKind == JsonValueKind.Object
            && v.TryGetProperty("include_usage", out var u) && u.ValueKind == JsonValueKind.True;

        if (chat)
        {
            if (!Has("messages", out v) || v.ValueKind != JsonValueKind.Array || v.GetArrayLength() == 0)
                throw new ColdmindException("'messages' must be a non-empty array.");
            return new OpenAiRequest(v.EnumerateArray().Select(Message).ToList(), null, stream, usage, options);
        }
        if (!Has("prompt", out v)) throw new ColdmindException("'prompt' is required.");
        string prompt = v.ValueKind == JsonValueKind.String ? v.GetString()!
            : v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 1 && v[0].ValueKind == JsonValueKind.String
                ? v[0].GetString()!
                : throw new ColdmindException("'prompt' must be a string (or an array of one string).");
        return new OpenAiRequest(null, prompt, stream, usage, options);
    }

    private static float Number(string name, JsonElement e) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetSingle(out float f) && float.IsFinite(f)
            ? f : throw new ColdmindException($"'{name}' must be a number.");

    private static int Whole(string name, JsonElement e) =>
        e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i)
            ? i : throw new ColdmindException($"'{name}' must be a whole number.");

    /// <summary>One message: a role and content as a string or as text parts.</summary>
    private static ChatMessage Message(JsonElement m)
    {
        if (m.ValueKind != JsonValueKind.Object || !m.TryGetProperty("role", out var role)
            || role.ValueKind != JsonValueKind.String)
            throw new ColdmindException("Each message must be an object with a 'role'.");
        var chatRole = role.GetString() switch
        {
            "system" or "developer" => ChatRole.System,
            "user" => ChatRole.User,
            "assistant" => ChatRole.Assistant,
            var other => throw new ColdmindException(
                $"Messages of role '{other}' are not supported (system, developer, user, assistant)."),
        };
        if (!m.TryGetProperty("content", out var content)) throw new ColdmindException("Each message needs 'content'.");
        string text = content.ValueKind switch
        {
            JsonValueKind.String => content.GetString()!,
            JsonValueKind.Array => string.Concat(content.EnumerateArray().Select(TextPart)),
            _ => throw new ColdmindException("'content' must be a string or an array of text parts."),
        };
        return new ChatMessage(chatRole, text);
    }

    private static string TextPart(JsonElement part) =>
        part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out var t) && t.GetString() == "text"
        && part.TryGetProperty("text", out var s) && s.ValueKind == JsonValueKind.String
            ? s.GetString()! : throw new ColdmindException("Only text content parts are supported.");
}
